//! `sonic plan` and `sonic ablate` end to end.

use std::process::{Command, Output};

fn sonic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sonic"))
        .args(args)
        .output()
        .expect("run sonic")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = sonic(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn plan_reports_windows_boundaries_and_cost() {
    let v = json(&[
        "plan",
        "--frames",
        "125",
        "--steps",
        "25",
        "--schedule",
        "shift:alpha=7",
        "--json",
    ]);
    assert_eq!(v["cost"]["denoiser_calls"], 125);
    assert_eq!(v["cost"]["frame_evaluations"], 125 * 25);
    let step3 = &v["per_step"][3];
    assert_eq!(step3["windows"][0]["frames"][0], 104);
    assert_eq!(step3["boundaries"], serde_json::json!([4, 29, 54, 79, 104]));

    let text =
        String::from_utf8(sonic(&["plan", "--frames", "60", "--steps", "2"]).stdout).unwrap();
    assert!(
        text.contains("step   1  [53-59,0-17]  [18-42]  [43-59,0-7]"),
        "{text}"
    );
}

#[test]
fn plan_cost_accounts_for_the_sampler() {
    let v = json(&[
        "plan",
        "--frames",
        "50",
        "--steps",
        "10",
        "--sampler",
        "heun",
        "--json",
    ]);
    assert_eq!(v["cost"]["denoiser_calls"], (2 * 10 - 1) * 2);
}

#[test]
fn ablate_measures_what_the_cost_model_predicts() {
    let v = json(&[
        "ablate", "--frames", "80", "--steps", "6", "--latent", "2x3x3", "--json",
    ]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert_eq!(
            row["denoiser_calls"], row["predicted"]["denoiser_calls"],
            "{row}"
        );
        assert_eq!(
            row["frame_evaluations"], row["predicted"]["frame_evaluations"],
            "{row}"
        );
        assert!(row["metrics"]["motion"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn bad_schedule_specs_fail_with_one_line() {
    for args in [
        &["plan", "--frames", "10", "--schedule", "spiral"][..],
        &["plan", "--frames", "10", "--schedule", "overlap:o=30"][..],
        &["plan", "--frames", "0"][..],
        &["ablate", "--schedule", "shift:alpha=-1"][..],
        &["ablate", "--latent", "4xx8"][..],
        &["ablate", "--sampler", "ddim"][..],
    ] {
        let out = sonic(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.trim_end().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
