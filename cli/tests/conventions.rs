//! The command line's conventions, as a user meets them: help and version exit 0, a usage error is
//! one line with status 2, completions for the shells, progress on stderr that `--quiet` silences
//! while the summary stays.
mod common;
use common::TempDir;
use std::process::Command;

/// Runs the built `mdm`: (exit status, stdout, stderr).
fn mdm(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mdm")).args(args).envs(env.iter().copied()).output().expect("run mdm");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn help_and_version_exit_zero_on_stdout() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["dedupe", "--help"],
        &["generate", "-h"],
        &["train", "--help"],
        &["help", "blocking"],
    ] {
        let (code, out, err) = mdm(args, &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("Usage: mdm"), "{args:?}: {out}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
    let (_, dedupe, _) = mdm(&["dedupe", "--help"], &[]);
    for flag in ["--entity", "--id-column", "--map", "--out", "--threads", "--online", "--quiet"] {
        assert!(dedupe.contains(flag), "{flag} in mdm dedupe --help");
    }
    let (code, out, _) = mdm(&["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("mdm {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_are_one_line_with_status_two() {
    let cases: [(&[&str], &str); 6] = [
        (&[], "a command is required"),
        (&["frobnicate"], "'frobnicate'"),
        (&["dedupe", "--entity", "customer"], "--id-column"),
        (
            &["dedupe", "--entity", "customer", "--id-column", "id", "--out", "o.csv", "--threads", "0", "a.csv"],
            "--threads",
        ),
        (
            &[
                "train",
                "--entity",
                "customer",
                "--id-column",
                "id",
                "--out",
                "o.toml",
                "--truth",
                "t.csv",
                "--labels",
                "l.jsonl",
                "a.csv",
            ],
            "--labels",
        ),
        (&["generate", "people", "--records", "10", "--dup-rate", "2", "--out", "x"], "--dup-rate"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = mdm(args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("mdm: ") && err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("--help"), "{args:?} names the help to read: {err}");
    }
    // A failure of the work itself is status 1, not a usage error.
    let d = TempDir::new("conventions", "missing-input");
    let o = d.join("o.csv");
    let (code, _, err) =
        mdm(&["dedupe", "--entity", "customer", "--id-column", "id", "--out", o.to_str().expect("p"), "nope.csv"], &[]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn completions_for_the_common_shells() {
    for (shell, marker) in [
        ("bash", "_mdm()"),
        ("zsh", "#compdef mdm"),
        ("fish", "complete -c mdm"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let (code, out, err) = mdm(&["completions", shell], &[]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {}", &out[..out.len().min(200)]);
        assert!(out.contains("dedupe") && out.contains("id-column"), "{shell} completes subcommands and options");
    }
    let (code, _, _) = mdm(&["completions", "tcsh"], &[]);
    assert_eq!(code, 2);
}

#[test]
fn progress_lines_off_a_terminal_and_quiet_keeps_only_the_summary() {
    let d = TempDir::new("conventions", "progress");
    let out = d.to_str().expect("p");
    let every = [("MDM_PROGRESS_EVERY_MS", "1")];
    let args = ["generate", "people", "--records", "20000", "--out", out];
    let (code, _, err) = mdm(&args, &every);
    assert_eq!(code, 0, "{err}");
    let progress: Vec<&str> = err.lines().filter(|l| l.starts_with("generate: ")).collect();
    assert!(!progress.is_empty(), "plain progress lines when stderr is not a terminal: {err}");
    assert!(progress.iter().all(|l| l.contains("of ~20000 records")), "{progress:?}");
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "no bar drawing off a terminal");
    let summary = err.lines().last().unwrap_or("");
    assert!(summary.starts_with("generate people: records 20000"), "{summary}");

    let (code, _, quiet) = mdm(&["--quiet", "generate", "people", "--records", "20000", "--out", out], &every);
    assert_eq!(code, 0, "{quiet}");
    assert_eq!(quiet.trim_end().lines().count(), 1, "the summary alone: {quiet}");
    assert!(quiet.starts_with("generate people: records 20000"), "{quiet}");
    // `-q` after the subcommand too.
    let (_, _, quiet) = mdm(&["generate", "people", "--records", "20000", "--out", out, "-q"], &every);
    assert_eq!(quiet.trim_end().lines().count(), 1, "{quiet}");
}
