//! The generated JSON Schema judges runbooks as lifeboat does.

use lifeboat::runbook::schema;
use lifeboat::shipped::RUNBOOKS;
use lifeboat::yaml;

fn instance(text: &str) -> serde_json::Value {
    yaml::parse(text).expect("valid YAML").to_json()
}

#[test]
fn shipped_runbooks_are_valid_against_the_schema() {
    let validator = jsonschema::draft7::new(&schema::runbook()).expect("the schema compiles");
    for (file, text) in RUNBOOKS {
        let errors: Vec<String> = validator
            .iter_errors(&instance(text))
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:#?}");
    }
}

#[test]
fn schema_refuses_what_the_loader_refuses() {
    let validator = jsonschema::draft7::new(&schema::runbook()).expect("the schema compiles");
    let cases = [
        (
            "unknown top-level field",
            "name: x\nstrategy: pilot-light\nsteps: []\nextra: 1\n",
        ),
        (
            "unknown strategy",
            "name: x\nstrategy: pilot-lite\nsteps: []\n",
        ),
        (
            "unknown action",
            "name: x\nstrategy: pilot-light\nsteps: [{ id: a, action: nope }]\n",
        ),
        (
            "unknown step field",
            "name: x\nstrategy: pilot-light\nsteps: [{ id: a, action: wait, with: { duration: 1s }, timout: 1m }]\n",
        ),
        (
            "with field of another action",
            "name: x\nstrategy: pilot-light\nsteps: [{ id: a, action: wait, with: { duration: 1s, url: x } }]\n",
        ),
        (
            "bad duration",
            "name: x\nstrategy: pilot-light\nsteps: [{ id: a, action: wait, with: { duration: soon } }]\n",
        ),
        ("missing name", "strategy: pilot-light\nsteps: []\n"),
        (
            "a step with neither an action nor a runbook",
            "name: x\nstrategy: pilot-light\nsteps: [{ id: a, with: { duration: 1s } }]\n",
        ),
        (
            "a step with both an action and a runbook",
            "name: x\nstrategy: pilot-light\nsteps: [{ id: a, action: wait, runbook: c.yaml, with: { duration: 1s } }]\n",
        ),
    ];
    for (what, text) in cases {
        assert!(
            !validator.is_valid(&instance(text)),
            "the schema accepted: {what}"
        );
        assert!(
            lifeboat::runbook::load(
                "x.yaml",
                text,
                &[],
                lifeboat::runbook::MissingParams::Placeholder
            )
            .is_err(),
            "the loader accepted: {what}"
        );
    }
}

#[test]
fn config_schema_accepts_a_config_the_loader_accepts() {
    let validator =
        jsonschema::draft7::new(&lifeboat::config::schema()).expect("the schema compiles");
    let text = "state_dir: /var/lib/lifeboat\naws: { profile: dr, endpoint_url: 'http://127.0.0.1:5000' }\nlog: { format: json }\n";
    assert!(lifeboat::config::load("c.yaml", text).is_ok());
    assert!(validator.is_valid(&instance(text)));
    assert!(!validator.is_valid(&instance("aws: { secret_access_key: x }\n")));
}

#[test]
fn schema_accepts_a_step_that_runs_a_child_runbook() {
    let validator = jsonschema::draft7::new(&schema::runbook()).expect("the schema compiles");
    let text = "name: x\nstrategy: pilot-light\nsteps:\n  - { id: data, runbook: data-tier.yaml, params: { db: orders } }\n  - { id: dns, action: wait, needs: [data], with: { duration: 1s } }\n";
    let errors: Vec<String> = validator
        .iter_errors(&instance(text))
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
