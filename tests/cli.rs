//! Runs the built `switchboard` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn check_config(path: &Path) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg("--config")
        .arg(path)
        .output()
}

fn demo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switchboard.toml")
}

#[test]
fn check_config_accepts_the_demo_config() -> TestResult {
    let path = demo_config();
    let out = check_config(&path)?;
    let stdout = String::from_utf8(out.stdout)?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(&format!("configuration OK: {}\n", path.display())),
        "{stdout}"
    );
    assert!(stdout.contains("3 agent(s)"), "{stdout}");
    Ok(())
}

#[test]
fn check_config_rejects_an_unknown_key_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[registrar]\nmin_expire = 30\n")?;
    let out = check_config(&path)?;
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("registrar.min_expire"), "{stderr}");
    assert!(out.stdout.is_empty());
    Ok(())
}

#[test]
fn check_config_rejects_an_invalid_value_naming_file_and_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[registrar]\nmin_expires = 7200\n")?;
    let out = check_config(&path)?;
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("registrar.min_expires"), "{stderr}");
    Ok(())
}

#[test]
fn check_config_reports_a_missing_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("absent.toml");
    let out = check_config(&path)?;
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("absent.toml"), "{stderr}");
    Ok(())
}

#[test]
fn serve_exits_2_on_a_bad_config() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[sip]\nlisten = []\n")?;
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()?;
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("sip.listen"), "{stderr}");
    Ok(())
}

#[test]
fn usage_errors_exit_2() -> TestResult {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--log-format", "xml"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}
