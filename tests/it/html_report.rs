//! `report.html` written by real runs: the drill's timeline holds every kind of mark, and
//! hostile exchange data from the simulator arrives in the page as text. (The browser
//! check is `.ci/html-report.sh`; nothing here needs a browser.)
use crate::support;

use support::{respond, sim};

fn html_of(run: &support::Run, cwd: &std::path::Path) -> String {
    let incident = run.incident(cwd);
    std::fs::read_to_string(incident.join("report.html"))
        .unwrap_or_else(|e| panic!("{}: {e}", incident.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drill_report_has_a_timeline_with_every_kind_of_mark() {
    let dir = tempfile::tempdir().unwrap();
    let run = respond(dir.path(), &["compromised", "--drill", "--yes"], &[]).await;
    run.expect_code(0);
    let html = html_of(&run, dir.path());
    assert!(html.contains("DRILL (autopilot)"));
    assert!(html.contains("<svg class=\"timeline window\""));
    assert!(html.contains("<svg class=\"timeline response\""));
    for class in [
        "mark trade",
        "mark withdrawal flagged",
        "mark transfer",
        "mark pay",
        "mark cancel",
        "mark operator",
    ] {
        assert!(html.contains(&format!("class=\"{class}")), "no {class}");
    }
    // Every cancelled order and every operator answer is listed under the chart.
    assert_eq!(html.matches("<tr class=\"cancel\">").count(), 8);
    assert_eq!(html.matches("<tr class=\"operator\">").count(), 5);
    // Off-market and first-ever trades are marked in the list too: the candidate pass's
    // five, and the one the deep scan finds through the futures income (the drill's
    // responder key may read futures).
    assert_eq!(html.matches("<tr class=\"trade flagged\">").count(), 6);
    let lower = html.to_lowercase();
    for forbidden in ["<script", "src=\"http", "href=\"http", "url(", "<link"] {
        assert!(!lower.contains(forbidden), "found {forbidden}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_data_from_the_exchange_is_shown_as_text() {
    let hostile = respond::sim::BUILTIN_LEAKED_KEY.replace(
        "address: TXunknownR4nd0mAddr3ss9zQ",
        "address: \"<script>alert(1)</script><img src=x onerror=alert(2)>\"",
    );
    assert_ne!(hostile, respond::sim::BUILTIN_LEAKED_KEY);
    let server = sim(Some(&hostile)).await;
    let dir = tempfile::tempdir().unwrap();
    let env = support::leaked_env(&server);
    let run = respond(
        dir.path(),
        &["compromised", "--yes", "--base-url", server.url()],
        &support::env_refs(&env),
    )
    .await;
    // Live-style without a terminal: manual steps stay pending.
    run.expect_code(5);
    let html = html_of(&run, dir.path());
    let lower = html.to_lowercase();
    assert!(
        !lower.contains("<script"),
        "a script tag got into report.html"
    );
    assert!(!lower.contains("<img"), "an img tag got into report.html");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x"));
    assert!(html.contains("class=\"mark withdrawal flagged\""));
}
