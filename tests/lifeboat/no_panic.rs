//! Whatever the input, the parser and validators answer with problems,
//! never a panic.

use lifeboat::runbook::{MissingParams, load};
use lifeboat::shipped::RUNBOOKS;
use proptest::prelude::*;

fn check(text: &str) {
    let _ = load("fuzz.yaml", text, &[], MissingParams::Placeholder);
    let _ = load(
        "fuzz.yaml",
        text,
        &[("dr_region".into(), "x".into())],
        MissingParams::Refuse,
    );
    let _ = lifeboat::config::load("fuzz.yaml", text);
}

/// Fragments of the runbook language and of YAML's trickier syntax.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "name: ",
        "strategy: ",
        "pilot-light",
        "steps:",
        "params:",
        "- ",
        "id: ",
        "action: ",
        "wait",
        "exec",
        "rds.promote_read_replica",
        "with: ",
        "needs: ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "\n",
        "  ",
        "    ",
        "${",
        "}",
        "${dr_region}",
        "${steps.a.outputs.b}",
        "&a ",
        "*a",
        "!!str ",
        "'",
        "\"",
        "|",
        ">",
        "#",
        "---\n",
        "...\n",
        "? ",
        "~",
        "null",
        "true",
        "12",
        "-1",
        "1e400",
        "15m",
        "0s",
        "when: ",
        "drill",
        "retry: ",
        "attempts: ",
        "timeout: ",
        "restores_service: ",
        "rollback: ",
        "fallback: ",
        "default: ",
        "type: int",
        "secret: true",
        "regions: ",
        "from: ",
        "to: ",
        "us-east-1",
        "\t",
        "\u{feff}",
        "é",
        "\0",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check(&text);
    }

    #[test]
    fn language_fragments_never_panic(tokens in prop::collection::vec(token(), 0..120)) {
        check(&tokens.concat());
    }

    #[test]
    fn mutated_shipped_runbooks_never_panic(
        which in 0..RUNBOOKS.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..40, token()), 1..8),
    ) {
        let mut text = RUNBOOKS[which].1.to_string();
        for (at, cut, insert) in edits {
            let mut start = at.index(text.len() + 1);
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + cut).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.replace_range(start..end, insert);
        }
        check(&text);
    }
}

#[test]
fn hostile_documents_are_refused_with_a_location() {
    let deep = format!("a: {}1{}", "[".repeat(500), "]".repeat(500));
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        bomb.push_str(&format!(
            "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
            p = if i == 1 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            }
        ));
    }
    let truncated = &RUNBOOKS[1].1[..RUNBOOKS[1].1.len() / 2];
    for text in [
        deep.as_str(),
        bomb.as_str(),
        truncated,
        "\u{0}\u{1}",
        ":\n:\n:",
        "steps: !!binary aGVsbG8=",
    ] {
        let problems =
            load("hostile.yaml", text, &[], MissingParams::Placeholder).expect_err("refused");
        assert!(
            problems
                .iter()
                .all(|p| p.loc.is_known() || p.message.contains("no steps")),
            "{problems:#?}"
        );
    }
}
