//! Ed25519 and RSA API keys (Binance recommends Ed25519 for new keys): the private key is
//! a PKCS#8 PEM, requests carry a base64 signature, and the simulator verifies it with the
//! registered public key. Drills and `respond audit` work with both, like with HMAC keys;
//! a wrong private key is -1022, as a wrong HMAC secret is.
use crate::support;

use std::path::{Path, PathBuf};

use respond::sim::{Actor, Scenario, SimConfig, SimServer};
use support::{read_json, respond};

const ED25519: &str = "playbooks/scenarios/leaked-ed25519.yaml";
const RSA: &str = "playbooks/scenarios/leaked-rsa.yaml";

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn scenario(name: &str) -> Scenario {
    Scenario::load(&scenario_path(name)).unwrap()
}

async fn start(name: &str) -> SimServer {
    let mut scenario = scenario(name);
    scenario.attacker = None;
    SimServer::start(SimConfig::new(scenario)).await.unwrap()
}

/// A 0600 file in `dir`.
fn private_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn ed25519_and_rsa_drills_complete_like_the_hmac_one() {
    for (name, kind) in [(ED25519, "ed25519"), (RSA, "rsa")] {
        let dir = tempfile::tempdir().unwrap();
        let path = scenario_path(name);
        let run = crate::support::drill(dir.path(), path.to_str().unwrap()).await;
        assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
        let incident = run.incident(dir.path());
        let report = read_json(&incident.join("report.json"));
        assert_eq!(report["outcome"], "completed", "{kind}");
        let step = |id: &str| crate::support::step(&report, id).clone();
        assert_eq!(step("triage")["status"], "ok", "{kind}");
        assert_eq!(step("cancel-orders")["outputs"]["cancelled"], 8, "{kind}");
        assert_eq!(step("cancel-orders")["outputs"]["remaining"], 0, "{kind}");
        assert_eq!(
            step("verify-revoked")["outputs"]["verdict"],
            "dead",
            "{kind}"
        );
        assert_eq!(report["scorecard"]["open_orders_at_end"], 0, "{kind}");
        support::assert_verifies(&incident);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_works_with_ed25519_and_rsa_keys() {
    // Ed25519 from a key file naming the PEM file; RSA from the environment.
    let dir = tempfile::tempdir().unwrap();
    let server = start(ED25519).await;
    let key = scenario(ED25519).keys[0].clone();
    let pem = key.private_key.clone().unwrap();
    private_file(dir.path(), "leaked.pem", &pem);
    let key_file = private_file(
        dir.path(),
        "leaked.key",
        &format!("api_key: {}\nprivate_key_file: leaked.pem\n", key.api_key),
    );
    let run = respond(
        dir.path(),
        &[
            "audit",
            "--base-url",
            server.url(),
            "--key-file",
            key_file.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    // Findings (withdrawals enabled, no IP whitelist) are exit 1; a refused key is 3.
    assert_eq!(run.code, 1, "ed25519: {}", run.stderr);
    run.expect_stderr("withdraw");
    assert!(
        server.request_log().iter().any(|e| e.actor == Actor::Client
            && e.status == 200
            && e.path.contains("apiRestrictions")),
        "the signed reads were accepted"
    );

    let dir = tempfile::tempdir().unwrap();
    let server = start(RSA).await;
    let key = scenario(RSA).keys[0].clone();
    let pem_path = private_file(dir.path(), "rsa.pem", &key.private_key.clone().unwrap());
    let run = audit_with_pem_file(dir.path(), &server, &key.api_key, &pem_path).await;
    assert_eq!(run.code, 1, "rsa: {}", run.stderr);
    assert!(
        !server.request_log().iter().any(|e| e.code == Some(-1022)),
        "every signature verified"
    );
}

/// `respond audit` against `server` with `api_key` and its private key in `pem`
/// (`BINANCE_PRIVATE_KEY_FILE`).
async fn audit_with_pem_file(
    cwd: &Path,
    server: &SimServer,
    api_key: &str,
    pem: &Path,
) -> support::Run {
    respond(
        cwd,
        &["audit", "--base-url", server.url()],
        &[
            ("BINANCE_API_KEY", api_key),
            ("BINANCE_PRIVATE_KEY_FILE", pem.to_str().unwrap()),
        ],
    )
    .await
}

/// Another Ed25519 private key, PEM-encoded (PKCS#8).
fn other_ed25519_pem() -> String {
    use base64::Engine;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_private_key_is_1022_like_a_wrong_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(ED25519).await;
    let key = scenario(ED25519).keys[0].clone();
    let pem_path = private_file(dir.path(), "wrong.pem", &other_ed25519_pem());
    let run = audit_with_pem_file(dir.path(), &server, &key.api_key, &pem_path).await;
    assert_eq!(
        run.code, 3,
        "refused before anything was done: {}",
        run.stderr
    );
    run.expect_stderr("-1022");
    let log = server.request_log();
    let signed: Vec<_> = log
        .iter()
        .filter(|e| e.actor == Actor::Client && e.query.contains("timestamp="))
        .collect();
    assert!(!signed.is_empty());
    assert!(signed.iter().all(|e| e.code == Some(-1022)), "{signed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_an_encrypted_private_key_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    // `openssl pkcs8 -topk8 -v2 aes-256-cbc` output: its passphrase can only be asked at
    // a terminal.
    let pem = private_file(
        dir.path(),
        "enc.pem",
        include_str!("../fixtures/leaked-ed25519-encrypted.pem"),
    );
    let run = respond(
        dir.path(),
        &["audit", "--base-url", "http://127.0.0.1:9"],
        &[
            (
                "BINANCE_API_KEY",
                "9naHVck6pbd4ZRj2SxphvDTwrzqwo72n3wZuot7UGAoKD1AFfDKZxCKu7SPCzX3Z",
            ),
            ("BINANCE_PRIVATE_KEY_FILE", pem.to_str().unwrap()),
        ],
    )
    .await;
    run.expect_code(2);
    run.expect_stderr("encrypted");
    run.expect_stderr("openssl pkcs8");
    run.expect_stderr("terminal");
    assert!(!run.stderr.contains("MIGbMFcG"), "{}", run.stderr);
}
