//! Evidence that misses nothing the account holds: COIN-M positions, symbols whose only
//! trace is a conditional (algo) order or a position, and a support message that
//! disowns only the trades with evidence of the attacker.
use crate::support;

use support::{csv_rows, read_json};

/// The built-in story plus what an attacker's futures activity leaves behind: two COIN-M
/// positions (one on a symbol with no order or balance), and a USDⓈ-M symbol whose only
/// trace is a TAKE_PROFIT_MARKET conditional order, each with a trade inside the window.
fn futures_story() -> String {
    let text = respond::sim::BUILTIN_LEAKED_KEY;
    let text = text.replace(
        "  - { market: coinm,  symbol: BTCUSD_PERP, base: BTC, quote: USD,  price: \"64005\" }\n",
        "  - { market: coinm,  symbol: BTCUSD_PERP, base: BTC, quote: USD,  price: \"64005\" }\n  - { market: coinm,  symbol: ETHUSD_PERP, base: ETH, quote: USD,  price: \"3402\", contract_size: 10 }\n  - { market: usdm,   symbol: SOLUSDT,     base: SOL, quote: USDT, price: \"150\" }\n  - { market: coinm,  symbol: SOLUSD_PERP, base: SOL, quote: USD,  price: \"150.2\", contract_size: 10 }\n",
    );
    let text = text.replace(
        "  # The attacker's resting bid far above the market.\n",
        "  # Only a take-profit on SOLUSDT: the symbol's one trace among the open orders.\n  - { market: usdm, symbol: SOLUSDT, side: SELL, type: TAKE_PROFIT_MARKET, stop_price: \"190\", quantity: \"20\", time: -2h }\n  - { market: coinm, symbol: SOLUSD_PERP, side: SELL, type: TAKE_PROFIT_MARKET, stop_price: \"190\", quantity: \"30\", time: -2h }\n  # The attacker's resting bid far above the market.\n",
    );
    let text = text.replace(
        "\nwithdrawals:\n",
        "  - { market: usdm,  symbol: SOLUSDT,     side: BUY,  price: \"150.1\", quantity: \"20\", time: -5h }\n  - { market: coinm, symbol: ETHUSD_PERP, side: SELL, price: \"3401\",  quantity: \"4\",  time: -6h }\n  - { market: coinm, symbol: SOLUSD_PERP, side: BUY,  price: \"150.3\", quantity: \"30\", time: -8h }\n  - { market: coinm, symbol: BTCUSD_PERP, side: SELL, price: \"64100\", quantity: \"3\",  time: -7h }\n\nwithdrawals:\n",
    );
    let text = text.replace(
        "  - { market: usdm, symbol: BTCUSDT, amount: \"0.01\", entry_price: \"64030\", leverage: 5 }\n",
        "  - { market: usdm, symbol: BTCUSDT, amount: \"0.01\", entry_price: \"64030\", leverage: 5 }\n  - { market: coinm, symbol: BTCUSD_PERP, amount: \"-3\", entry_price: \"64100\", leverage: 10 }\n  - { market: coinm, symbol: ETHUSD_PERP, amount: \"-4\", entry_price: \"3401\", leverage: 10 }\n",
    );
    assert_eq!(text.matches("SOLUSDT").count(), 4, "the story was edited");
    assert_eq!(
        text.matches("SOLUSD_PERP").count(),
        3,
        "the story was edited"
    );
    assert_eq!(
        text.matches("ETHUSD_PERP").count(),
        3,
        "the story was edited"
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_reports_every_position_and_the_trades_of_algo_only_and_position_only_symbols() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("futures.yaml"), futures_story()).unwrap();
    let run = crate::support::drill(dir.path(), "futures.yaml").await;
    run.expect_code(0);
    let incident = run.incident(dir.path());

    // Every open position, USDⓈ-M and COIN-M, in the evidence and in the words.
    let positions = csv_rows(&incident.join("evidence/positions.csv"));
    let mut held: Vec<(String, String, String)> = positions
        .iter()
        .map(|p| {
            (
                p["market"].clone(),
                p["symbol"].clone(),
                p["positionAmt"].clone(),
            )
        })
        .collect();
    held.sort();
    assert_eq!(
        held,
        vec![
            ("coinm".into(), "BTCUSD_PERP".into(), "-3".into()),
            ("coinm".into(), "ETHUSD_PERP".into(), "-4".into()),
            ("usdm".into(), "BTCUSDT".into(), "0.01".into()),
        ]
    );
    let coin = positions
        .iter()
        .find(|p| p["symbol"] == "ETHUSD_PERP")
        .unwrap();
    assert!(
        !coin["notionalValue"].is_empty(),
        "notional in the coin: {coin:?}"
    );
    assert!(!coin["entryPrice"].is_empty() && !coin["unRealizedProfit"].is_empty());
    assert!(
        run.stderr.contains("3 open futures position(s): ")
            && run
                .stderr
                .contains("coinm ETHUSD_PERP short 4 contracts (notional ")
            && run.stderr.contains("respond does not close positions"),
        "{}",
        run.stderr
    );
    // Counted in the blast radius at triage, before anything else.
    run.expect_stderr("  open futures positions: 3 (");
    let report = read_json(&incident.join("report.json"));
    let balances = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "balances")
        .unwrap();
    assert_eq!(balances["outputs"]["open_positions"], 3, "{balances}");
    let triage = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "triage")
        .unwrap();
    assert_eq!(triage["outputs"]["open_positions"], 3, "{triage}");

    // The trades of a symbol seen only as a conditional order, and of symbols seen only
    // as positions, are read, and coverage says why each symbol was a candidate.
    let trades = csv_rows(&incident.join("evidence/trades.csv"));
    for (market, symbol) in [
        ("usdm", "SOLUSDT"),
        ("coinm", "SOLUSD_PERP"),
        ("coinm", "ETHUSD_PERP"),
        ("coinm", "BTCUSD_PERP"),
    ] {
        assert!(
            trades
                .iter()
                .any(|t| t["market"] == market && t["symbol"] == symbol),
            "{market} {symbol}: {trades:?}"
        );
    }
    let coverage = csv_rows(&incident.join("evidence/coverage.csv"));
    let why = |source: &str, symbol: &str| {
        coverage
            .iter()
            .find(|r| r["source"] == source && r["scope"] == symbol)
            .map(|r| r["detail"].clone())
            .unwrap_or_default()
    };
    assert!(
        why("usdm trades", "SOLUSDT").contains("open order"),
        "{coverage:?}"
    );
    assert!(
        why("coinm trades", "SOLUSD_PERP").contains("open order"),
        "{coverage:?}"
    );
    assert!(
        why("coinm trades", "ETHUSD_PERP").contains("position"),
        "{coverage:?}"
    );
    assert!(
        why("spot trades", "XYZBTC").contains("base and quote held"),
        "{coverage:?}"
    );

    // The support message names the positions and disowns only trades with evidence.
    let message = std::fs::read_to_string(incident.join("support-message.txt")).unwrap();
    assert!(
        message.contains("Open futures positions on the account when I wrote this (3):"),
        "{message}"
    );
    assert!(message.contains("Trades I did not make (4):"), "{message}");
    assert!(message.contains("far from the market price"), "{message}");
    // First-ever trades in liquid pairs may be the owner's: listed, not disowned.
    let (disowned, review) = message
        .split_once("Trades to review")
        .expect("a review list");
    assert!(review.contains("usdm SOLUSDT BUY 20"), "{message}");
    assert!(!disowned.contains("SOLUSDT"), "{message}");
    assert!(
        run.stderr.contains(
            "flagged trades split by respond's rule, with nobody at a terminal to check it"
        ),
        "{}",
        run.stderr
    );
    let md = std::fs::read_to_string(incident.join("report.md")).unwrap();
    assert!(
        md.contains("flagged trades split by respond's rule"),
        "the report says so"
    );
    assert!(
        md.contains("coinm ETHUSD_PERP short 4 contracts"),
        "the report names every position"
    );
}
