//! `RunConfig::from_ron` on arbitrary text, then `validate`, and the round
//! trip: a parsed config written with `to_ron` must parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use squadlab::config::RunConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match RunConfig::from_ron(text, "fuzz.ron") {
        Ok(config) => config,
        Err(e) => {
            // A parse error names the file and a position.
            let message = e.to_string();
            assert!(message.starts_with("fuzz.ron:"), "{message}");
            return;
        }
    };
    if let Err(e) = config.validate() {
        assert!(
            !e.problems().is_empty(),
            "an invalid config names no problem"
        );
    }
    let ron = config.to_ron();
    let back = RunConfig::from_ron(&ron, "to_ron").unwrap_or_else(|e| {
        panic!("to_ron's output does not parse: {e}\n--- input\n{text}\n--- to_ron\n{ron}")
    });
    // Debug prints floats exactly (shortest round-trip form, NaN as NaN, -0.0
    // as -0.0), so equal Debug text is an exact round trip even where
    // PartialEq fails on NaN.
    let (a, b) = (format!("{config:?}"), format!("{back:?}"));
    assert_eq!(a, b, "to_ron does not round-trip\n--- to_ron\n{ron}");
    assert_eq!(back.to_ron(), ron, "to_ron is not stable");
    let course = config.course();
    let _ = course.to_ron();
    let _ = config.warmup_steps_for(1000);
});
