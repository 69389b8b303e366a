//! Every learning-rate schedule against transformers' own `get_scheduler`
//! (tests/fixtures/lr_schedules.json, made by
//! tools/reference/lr_schedules_fixture.py), step by step past the end.

use squadlab::config::{LrSchedulerKwargs, LrSchedulerType, RunConfig};
use squadlab::train::schedule::Schedule;

#[test]
fn every_schedule_matches_transformers_step_by_step() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/lr_schedules.json")).unwrap();
    let base_lr = fixture["base_lr"].as_f64().unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["type"].as_str().unwrap();
        // The type as a run config names it.
        let kind: LrSchedulerType = ron::from_str(name).unwrap();
        let kwargs: LrSchedulerKwargs = serde_json::from_value(case["kwargs"].clone()).unwrap();
        let s = Schedule {
            kind,
            kwargs,
            base_lr,
            warmup_steps: case["warmup_steps"].as_u64().unwrap(),
            total_steps: case["total_steps"].as_u64().unwrap(),
        };
        for (step, want) in case["lr"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = s.lr(step as u64);
            assert!(
                (got - want).abs() <= 1e-15 * base_lr.max(want.abs()),
                "{name} {:?} step {step}: {got} against transformers' {want}",
                case["kwargs"]
            );
        }
    }
}

#[test]
fn schedule_fields_read_from_a_run_config_and_bad_kwargs_are_refused() {
    let c = RunConfig::from_ron(
        "RunConfig(lr_scheduler_type: cosine_with_restarts, lr_scheduler_kwargs: (num_cycles: Some(3.0)))",
        "test",
    )
    .unwrap();
    assert_eq!(c.lr_scheduler_type, LrSchedulerType::CosineWithRestarts);
    assert_eq!(c.lr_scheduler_kwargs.num_cycles, Some(3.0));
    let problems = |text: &str| match RunConfig::from_ron(text, "test").unwrap().validate() {
        Ok(()) => Vec::new(),
        Err(e) => e.problems(),
    };
    assert!(
        problems("RunConfig(lr_scheduler_kwargs: (num_cycles: Some(0.0)))")[0]
            .starts_with("lr_scheduler_kwargs.num_cycles must be positive")
    );
    assert!(
        problems("RunConfig(learning_rate: 1e-5, lr_scheduler_kwargs: (lr_end: Some(1e-4)))")[0]
            .starts_with("lr_scheduler_kwargs.lr_end must be in [0, learning_rate")
    );
    let err =
        RunConfig::from_ron("RunConfig(lr_scheduler_type: cosine_annealing)", "t.ron").unwrap_err();
    assert!(err.to_string().contains("t.ron"), "{err}");
}
