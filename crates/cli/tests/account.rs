//! `sigil account` as a user runs it: a real process, its exit status and output.

use std::process::Command;

fn sigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sigil"))
}

#[test]
fn new_then_show_gives_the_same_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let phrase = dir.path().join("phrase.txt");
    let out = sigil()
        .args(["account", "new", "--json", "--phrase-file"])
        .arg(&phrase)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let words = std::fs::read_to_string(&phrase).expect("phrase written");
    assert_eq!(words.split_whitespace().count(), 24);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(words.trim()),
        "phrase must not be printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&phrase)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let out = sigil()
        .args(["account", "show", "--json", "--phrase-file"])
        .arg(&phrase)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["account"], created["account"]);

    // A second `new` to the same file refuses to overwrite it.
    let out = sigil()
        .args(["account", "new", "--phrase-file"])
        .arg(&phrase)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(&phrase).expect("still there"),
        words
    );
}

#[test]
fn bad_input_is_one_line_and_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let phrase = dir.path().join("bad.txt");
    std::fs::write(&phrase, "abandon abandon abandon").expect("write");
    let out = sigil()
        .args(["account", "show", "--phrase-file"])
        .arg(&phrase)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: phrase file ") && err.contains("invalid recovery phrase"),
        "{err}"
    );
    let out = sigil()
        .args(["account", "show", "--phrase-file", "/nonexistent/phrase"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read phrase file"));
}
