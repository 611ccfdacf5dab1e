//! The Debian package, built by `.ci/package` with cargo-deb from the
//! tests' own binary: what it installs and where, its control fields, its
//! maintainer scripts, and that its example configuration is one its
//! binary accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::text;

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run the command");
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Build the package; its path.
fn package() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_lifeboat"));
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("the target directory");
    let out = Command::new(".ci/package")
        .args(["--profile", "dev", "--no-build"])
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run .ci/package");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let deb = said
        .lines()
        .rev()
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("no .deb named in: {said}"));
    PathBuf::from(deb.trim())
}

#[test]
fn the_debian_package_installs_the_daemon_its_user_and_its_documentation() {
    let deb = package();
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let paths: Vec<&str> = contents
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    for wanted in [
        "./usr/bin/lifeboat",
        "./usr/lib/systemd/system/lifeboat.service",
        "./usr/lib/sysusers.d/lifeboat.conf",
        "./usr/lib/tmpfiles.d/lifeboat.conf",
        "./usr/share/doc/lifeboat/examples/lifeboat.yaml",
        "./usr/share/doc/lifeboat/copyright",
        "./usr/share/lifeboat/runbooks/pilot-light.yaml",
        "./usr/share/lifeboat/prometheus/lifeboat-rules.yaml",
        "./usr/share/lifeboat/prometheus/lifeboat-rules.test.yaml",
        "./usr/share/lifeboat/grafana/lifeboat.json",
        "./usr/share/man/man1/lifeboat.1.gz",
        "./usr/share/man/man1/lifeboat-run.1.gz",
        "./usr/share/man/man1/lifeboat-daemon.1.gz",
        "./usr/share/bash-completion/completions/lifeboat",
        "./usr/share/zsh/vendor-completions/_lifeboat",
        "./usr/share/fish/vendor_completions.d/lifeboat.fish",
    ] {
        assert!(
            paths.contains(&wanted),
            "{wanted} not in the package:\n{contents}"
        );
    }
    assert!(
        !paths.iter().any(|p| p.starts_with("./etc/")),
        "no configuration is installed live: {contents}"
    );
    let field = |name: &str| run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name));
    assert_eq!(field("Package").trim(), "lifeboat");
    assert_eq!(field("Section").trim(), "admin");
    let depends = field("Depends");
    assert!(depends.contains("libc6"), "{depends}");
    assert!(depends.contains("systemd-sysusers"), "{depends}");

    let dir = tempfile::tempdir().expect("tempdir");
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let postinst = std::fs::read_to_string(control.join("postinst")).expect("postinst");
    assert!(postinst.contains("systemd-sysusers"), "{postinst}");
    assert!(postinst.contains("systemd-tmpfiles"), "{postinst}");
    // Installed, not enabled nor started: the daemon needs a config first.
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    for line in postinst
        .lines()
        .filter(|l| l.contains("deb-systemd-helper enable"))
    {
        assert!(
            postinst.contains("was-enabled"),
            "enabled only if it was before: {line}"
        );
    }
    let prerm = std::fs::read_to_string(control.join("prerm")).expect("prerm");
    assert!(prerm.contains("stop"), "removal stops the service: {prerm}");

    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let unit = std::fs::read_to_string(root.join("usr/lib/systemd/system/lifeboat.service"))
        .expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/bin/lifeboat daemon --config /etc/lifeboat/lifeboat.yaml"),
        "{unit}"
    );
    assert!(unit.contains("User=lifeboat"), "{unit}");
    let sysusers =
        std::fs::read_to_string(root.join("usr/lib/sysusers.d/lifeboat.conf")).expect("sysusers");
    assert!(
        sysusers.lines().any(|l| l.starts_with("u lifeboat ")),
        "{sysusers}"
    );
    let tmpfiles =
        std::fs::read_to_string(root.join("usr/lib/tmpfiles.d/lifeboat.conf")).expect("tmpfiles");
    assert!(
        tmpfiles.contains("d /etc/lifeboat     0750 root     lifeboat"),
        "{tmpfiles}"
    );
    // The example configuration, pointed at the packaged runbooks where
    // they landed, is one the packaged binary accepts.
    let example =
        std::fs::read_to_string(root.join("usr/share/doc/lifeboat/examples/lifeboat.yaml"))
            .expect("example config");
    let runbooks = root.join("usr/share/lifeboat/runbooks");
    let config = dir.path().join("lifeboat.yaml");
    std::fs::write(
        &config,
        example.replace(
            "/usr/share/lifeboat/runbooks",
            runbooks.to_str().expect("utf-8"),
        ),
    )
    .expect("write config");
    let checked = run(Command::new(root.join("usr/bin/lifeboat"))
        .arg("check-config")
        .arg(&config));
    assert!(checked.contains(": ok"), "{checked}");
    // lintian, where it is installed: no error.
    if Command::new("lintian").arg("--version").output().is_ok() {
        let out = Command::new("lintian")
            .arg(&deb)
            .output()
            .expect("run lintian");
        let errors: Vec<String> = text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("E:"))
            .map(str::to_string)
            .collect();
        assert!(errors.is_empty(), "lintian:\n{}", errors.join("\n"));
    }
}
