//! Scenario validation: serde's first type error with its position, otherwise every
//! semantic problem at once, each at its exact line and column.
use super::*;

const KEY: &str = "0lR8acRYSi4MDF8kWCBX1KpeZUaLJ4d8jOCs4bWYTI6wLqeeHq1PkCJVuoYqLRqr";

fn errors(text: &str) -> Vec<String> {
    Scenario::parse(text, "s.yaml")
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn header() -> String {
    format!(
        "version: 1\nname: t\nkeys:\n  - label: bot\n    api_key: {KEY}\n    secret: {KEY}\n    permissions: [reading, spot]\n"
    )
}

#[test]
fn builtin_scenarios_are_valid() {
    let sub = Scenario::load(std::path::Path::new("subaccount-leak.yaml")).unwrap();
    let accounts = sub.accounts.as_ref().expect("a master and sub-accounts");
    assert_eq!(accounts.master, "treasury@desk.example");
    assert_eq!(
        sub.keys[sub.leaked_key_index()].account.as_deref(),
        Some("mm-bot@desk.example")
    );
    let s = Scenario::builtin_leaked_key();
    assert_eq!(s.name, "leaked-key");
    let attacker = s.attacker.as_ref().unwrap();
    assert_eq!(s.keys[attacker.key].label, "Quant Trading Bot");
    assert_eq!(s.leaked_key_index(), 0);
    assert!(s.keys[0].permissions.withdrawals && s.keys[0].ip_whitelist.is_empty());
    for m in Market::ALL {
        assert!(
            s.open_orders.iter().any(|o| o.market == m),
            "{m} open order"
        );
    }
    let r = Scenario::builtin_read_only();
    assert_eq!(r.keys[0].permissions, Permissions::read_only());
    assert!(r.attacker.is_none());
}

#[test]
fn unknown_field_is_reported_alone_at_its_position() {
    let text = format!("{}colour: blue\nsymbols: 3\n", header());
    assert_eq!(
        errors(&text),
        vec!["s.yaml:8:1: unknown field `colour`, expected one of version, name, description, keys, symbols, listed_spot_symbols, balances, margin_loans, open_orders, trades, withdrawals, deposits, transfers, pay, positions, drill, attacker, client_ip, accounts".to_string()]
    );
}

#[test]
fn type_errors_carry_their_position() {
    assert_eq!(
        errors("version: one\nname: t\nkeys: []\n"),
        vec!["s.yaml:1:10: invalid u32".to_string()]
    );
    let text = format!(
        "{}open_orders:\n  - {{ market: spot, symbol: BTCUSDT, side: BUY, type: LIMIT, price: \"1\", time: -1h }}\n",
        header()
    );
    assert_eq!(
        errors(&text),
        vec!["s.yaml:9:74: missing field `quantity`".to_string()]
    );
}

#[test]
fn every_semantic_problem_at_once() {
    let text = format!(
        "version: 2
name: t
keys:
  - label: bot
    api_key: {KEY}
    secret: {KEY}
    permissions: [reading]
    ip_whitelist: [nowhere]
    created: yesterday
  - label: bot
    api_key: {KEY}
    secret: {KEY}
    permissions: [reading]
symbols:
  - {{ market: spot, symbol: BTCUSDT, base: BTC, quote: USDT, price: \"64000\" }}
  - {{ market: options, symbol: X, base: X, quote: Y, price: \"1\" }}
balances:
  spot: {{ BTC: \"-1\", USDT: lots }}
open_orders:
  - {{ market: spot, symbol: ETHUSDT, side: BUY, type: LIMIT, price: \"1\", quantity: \"1\", time: -1h }}
  - {{ market: spot, symbol: BTCUSDT, side: HOLD, type: LIMIT, quantity: \"1\", time: 3h }}
  - {{ market: spot, symbol: BTCUSDT, side: BUY, type: MARKET, quantity: \"1\", time: -1h }}
trades:
  - {{ market: usdm, symbol: BTCUSDT, side: BUY, price: \"1\", quantity: \"0\", time: -1d }}
withdrawals:
  - {{ coin: USDT, network: TRX, address: T, amount: \"1\", status: done, time: -4h }}
transfers:
  - {{ type: MAIN_MOON, asset: USDT, amount: \"1\", time: -6h }}
drill: {{ deletion: sometimes }}
attacker:
  key: Someone
  every: 1ms
  order: {{ market: spot, symbol: BTCUSDT, side: BUY, type: LIMIT, price: \"1\", quantity: \"1\" }}
"
    );
    let got = errors(&text);
    let expected = [
        "s.yaml:1:10: unsupported scenario version 2 (this respond reads version 1)",
        "s.yaml:8:20: \"nowhere\" is not an IP address",
        "s.yaml:9:14: created \"yesterday\": expected a time like -3h, -30m, -2d or an RFC 3339 instant",
        "s.yaml:10:12: duplicate key label \"bot\"",
        "s.yaml:11:14: duplicate api_key",
        "s.yaml:16:15: unknown market \"options\" (expected spot, margin, usdm or coinm)",
        "s.yaml:18:16: balance of BTC -1 must be 0 or more",
        "s.yaml:18:28: balance of USDT \"lots\" is not a decimal number (write it as a string, e.g. \"0.42\")",
        "s.yaml:20:29: symbol ETHUSDT is not declared for market spot under `symbols:`",
        "s.yaml:21:44: unknown side \"HOLD\" (expected one of BUY, SELL)",
        "s.yaml:21:56: a LIMIT order needs a price",
        "s.yaml:21:84: time \"3h\": times are in the past: write -DURATION (e.g. -3h), relative to server start",
        "s.yaml:22:55: a MARKET order fills at once: it cannot be open",
        "s.yaml:24:29: symbol BTCUSDT is not declared for market usdm under `symbols:`",
        "s.yaml:24:71: quantity 0 must be greater than 0",
        "s.yaml:26:66: unknown withdrawal status \"done\" (expected one of email-sent, cancelled, awaiting-approval, rejected, processing, failure, completed)",
        "s.yaml:28:13: unknown transfer type \"MAIN_MOON\"",
        "s.yaml:29:20: unknown deletion \"sometimes\" (expected correct or wrong-key)",
        "s.yaml:31:8: attacker key \"Someone\" is not a key label or api_key above",
        "s.yaml:32:10: attacker `every` must be at least 50ms",
    ];
    for e in &expected {
        assert!(
            got.iter().any(|g| g.starts_with(e)),
            "missing {e:?}\ngot:\n{}",
            got.join("\n")
        );
    }
    assert_eq!(got.len(), expected.len(), "got:\n{}", got.join("\n"));
    let mut sorted = got.clone();
    sorted.sort_by_key(|l| {
        let mut parts = l.split(':').skip(1);
        let line: usize = parts.next().unwrap().parse().unwrap();
        let col: usize = parts.next().unwrap().parse().unwrap();
        (line, col)
    });
    assert_eq!(got, sorted, "reported top to bottom");
}

#[test]
fn attacker_needs_permission_and_wrong_key_needs_a_second_key() {
    let text = format!(
        "{}symbols:\n  - {{ market: usdm, symbol: BTCUSDT, base: BTC, quote: USDT, price: \"1\" }}\ndrill: {{ deletion: wrong-key }}\nattacker:\n  key: bot\n  every: 5s\n  order: {{ market: usdm, symbol: BTCUSDT, side: BUY, type: LIMIT, price: \"1\", quantity: \"1\" }}\n",
        header()
    );
    assert_eq!(
        errors(&text),
        vec![
            "s.yaml:10:20: `deletion: wrong-key` needs a second key for the drill to delete by mistake".to_string(),
            "s.yaml:14:20: the attacker's key \"bot\" has no permission to trade usdm".to_string(),
        ]
    );
}

#[test]
fn times_relative_and_absolute() {
    assert_eq!(parse_when("-3h").unwrap(), When::Relative(-3 * 3_600_000));
    assert_eq!(parse_when("-1h30m").unwrap(), When::Relative(-5_400_000));
    assert_eq!(
        parse_when("-200d").unwrap(),
        When::Relative(-200 * 86_400_000)
    );
    assert_eq!(parse_when("now").unwrap(), When::Relative(0));
    assert_eq!(
        parse_when("2026-11-24T03:15:02Z").unwrap(),
        When::Absolute(1_795_490_102_000)
    );
    assert!(parse_when("3h").is_err());
    assert!(parse_when("-soon").is_err());
    assert_eq!(When::Relative(-1000).at(5000), 4000);
}

#[test]
fn loading_a_missing_file_is_a_read_error() {
    let err = Scenario::load(std::path::Path::new("/nonexistent/s.yaml")).unwrap_err();
    assert!(matches!(err, crate::SimError::ReadScenario { .. }));
}

#[test]
fn debug_output_never_shows_a_secret() {
    let s = Scenario::builtin_leaked_key();
    let shown = format!("{s:?}");
    for k in &s.keys {
        assert!(!shown.contains(&k.secret), "{}", k.label);
    }
    let state = crate::state::State::new(&s, 0);
    let shown = format!("{state:?}");
    assert!(!shown.contains(&s.keys[0].secret));
}

#[test]
fn ed25519_and_rsa_keys_take_a_public_key_instead_of_a_secret() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (file, kind) in [
        ("leaked-ed25519.yaml", "ed25519"),
        ("leaked-rsa.yaml", "rsa"),
    ] {
        let s = Scenario::load(&root.join("playbooks/scenarios").join(file)).unwrap();
        assert_eq!(s.keys[0].verifier.kind(), kind);
        assert!(s.keys[0].secret.is_empty());
        assert!(s.keys[0].private_key.is_some());
        assert!(!format!("{:?}", s.keys[0]).contains("PRIVATE KEY"));
    }
    let key = |body: &str| {
        format!("version: 1\nname: t\nkeys:\n  - label: bot\n    api_key: {KEY}\n{body}    permissions: [reading]\n")
    };
    let both = errors(&key(&format!(
        "    secret: {KEY}\n    public_key: \"-----BEGIN PUBLIC KEY-----\"\n"
    )));
    assert!(both.iter().any(|e| e.contains("not both")), "{both:?}");
    let neither = errors(&key(""));
    assert!(
        neither.iter().any(|e| e.contains("`public_key`")),
        "{neither:?}"
    );
    let junk = errors(&key(
        "    public_key: |\n      -----BEGIN PUBLIC KEY-----\n      AAAA\n      -----END PUBLIC KEY-----\n",
    ));
    assert!(junk.iter().any(|e| e.contains("public_key:")), "{junk:?}");
}

#[test]
fn key_accounts_must_be_declared() {
    let key = "A".repeat(64);
    let text = format!(
        "version: 1\nname: t\naccounts:\n  master: m@x\n  sub_accounts:\n    - email: s@x\nkeys:\n  - {{ label: a, api_key: {key}, secret: {key}, permissions: [reading], account: nobody@x }}\n"
    );
    let err = Scenario::parse(&text, "t.yaml").unwrap_err().to_string();
    assert!(err.contains("unknown account \"nobody@x\""), "{err}");
    let text = format!(
        "version: 1\nname: t\nkeys:\n  - {{ label: a, api_key: {key}, secret: {key}, permissions: [reading], account: s@x }}\n"
    );
    let err = Scenario::parse(&text, "t.yaml").unwrap_err().to_string();
    assert!(err.contains("needs an `accounts:` section"), "{err}");
}

#[test]
fn sub_account_transfers_and_drill_responder_are_checked() {
    let key = "A".repeat(64);
    let text = format!(
        "version: 1\nname: t\naccounts:\n  master: m@x\n  sub_accounts:\n    - email: s@x\n  transfers:\n    - {{ type: sideways, from: s@x, to: q@x, asset: USDT, amount: \"1\", time: -1h }}\nkeys:\n  - {{ label: a, api_key: {key}, secret: {key}, permissions: [reading], account: s@x }}\ndrill: {{ responder: boss }}\n"
    );
    let err = Scenario::parse(&text, "t.yaml").unwrap_err().to_string();
    assert!(err.contains("unknown type \"sideways\""), "{err}");
    assert!(err.contains("unknown account \"q@x\""), "{err}");
    assert!(err.contains("unknown responder \"boss\""), "{err}");
}
