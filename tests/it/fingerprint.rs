//! The incident fingerprint and the operator signature: a rewritten folder and a
//! folder re-signed with a fresh key are both caught.
use crate::support;

use support::respond;

fn verify(dir: &std::path::Path, incident: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_respond"))
        .current_dir(dir)
        .args(["report", "verify"])
        .arg(incident)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn printed_fingerprint(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .expect("a fingerprint is printed")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fingerprint_catches_a_rewritten_folder_and_a_signature_a_fresh_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("config");
    let keys_str = keys.to_str().unwrap().to_string();
    let env = [("XDG_CONFIG_HOME", keys_str.as_str())];
    let first = respond(
        dir.path(),
        &["compromised", "--drill", "--yes", "--sign"],
        &env,
    )
    .await;
    first.expect_code(0);
    let a = first.incident(dir.path());
    let fingerprint = printed_fingerprint(&first.stderr);
    first.expect_stderr("signed by ed25519:");
    assert!(a.join("signature.json").is_file());
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(keys.join("respond/operator-ed25519.pk8"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);

    let (code, out) = verify(dir.path(), &a, &["--fingerprint", &fingerprint]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the fingerprint matches the record as it stands"),
        "{out}"
    );
    assert!(out.contains("signed by ed25519:"), "{out}");

    // Rewrite the folder wholesale with another, internally consistent run.
    let second = respond(
        dir.path(),
        &["compromised", "--drill", "--yes", "--sign"],
        &env,
    )
    .await;
    let b = second.incident(dir.path());
    for file in [
        "journal.jsonl",
        "playbook.yaml",
        "report.md",
        "signature.json",
    ] {
        std::fs::copy(b.join(file), a.join(file)).unwrap();
    }
    let mut report = support::read_json(&b.join("report.json"));
    report["incident"] = serde_json::json!(a.file_name().unwrap().to_str().unwrap());
    std::fs::write(
        a.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap() + "\n",
    )
    .unwrap();
    let (code, out) = verify(dir.path(), &a, &[]);
    assert_eq!(
        code, 0,
        "on its own the rewritten folder is consistent: {out}"
    );
    let (code, out) = verify(dir.path(), &a, &["--fingerprint", &fingerprint]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not in this record"), "{out}");

    // Re-sign B's record with a fresh key: the journal names the old one.
    let fresh = dir.path().join("fresh-config");
    let fresh_str = fresh.to_str().unwrap().to_string();
    let third = respond(
        dir.path(),
        &["compromised", "--drill", "--yes", "--sign"],
        &[("XDG_CONFIG_HOME", fresh_str.as_str())],
    )
    .await;
    let c = third.incident(dir.path());
    let mut signature: serde_json::Value = support::read_json(&c.join("signature.json"));
    let original: serde_json::Value = support::read_json(&b.join("signature.json"));
    signature["chain_head"] = original["chain_head"].clone();
    std::fs::write(b.join("signature.json"), signature.to_string()).unwrap();
    let (code, out) = verify(dir.path(), &b, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature"), "{out}");
}
