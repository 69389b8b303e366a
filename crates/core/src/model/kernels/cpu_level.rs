//! Which vector extensions the project's own CPU kernels use: the widest the
//! CPU has, or less when `SQUADLAB_CPU_LEVEL` caps it. The cap lets one
//! AVX-512 machine check the AVX2 path too (CI runs the numeric tests under
//! both); it can only lower the level, never raise it past the CPU.
//!
//! It governs the `multiversion!` kernels alone. The matrix products go
//! through the `gemm` crate, which picks its own path from the CPU and whose
//! AVX-512 kernels exist only in builds with the `avx512` feature (default).

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// The variable that caps the level: `avx512`, `avx2` or `baseline`.
pub const ENV: &str = "SQUADLAB_CPU_LEVEL";

/// A kernel path, ordered from the narrowest to the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuLevel {
    /// The build's baseline target (SSE2 on x86_64).
    Baseline = 1,
    /// AVX2 with FMA.
    Avx2 = 2,
    /// AVX-512 F, DQ, VL and BW.
    Avx512 = 3,
}

impl CpuLevel {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" => Ok(Self::Avx512),
            "avx2" => Ok(Self::Avx2),
            "baseline" | "none" => Ok(Self::Baseline),
            other => Err(format!(
                "{ENV}={other:?} is not a CPU level: use avx512, avx2 or baseline"
            )),
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            3 => Self::Avx512,
            2 => Self::Avx2,
            _ => Self::Baseline,
        }
    }
}

impl fmt::Display for CpuLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Avx512 => "AVX-512",
            Self::Avx2 => "AVX2+FMA",
            Self::Baseline => "baseline",
        })
    }
}

/// The widest level this CPU runs.
pub fn detected() -> CpuLevel {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        // The AVX-512 kernels are compiled with AVX2 and FMA enabled too.
        let avx2 = has!("avx2") && has!("fma");
        if avx2 && has!("avx512f") && has!("avx512dq") && has!("avx512vl") && has!("avx512bw") {
            return CpuLevel::Avx512;
        }
        if avx2 {
            return CpuLevel::Avx2;
        }
    }
    CpuLevel::Baseline
}

/// The cap `SQUADLAB_CPU_LEVEL` asks for: `Ok(None)` when unset, an error
/// naming the variable when it holds something else than a level.
pub fn requested() -> Result<Option<CpuLevel>, String> {
    match std::env::var(ENV) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => CpuLevel::parse(&text).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{ENV} is not valid Unicode")),
    }
}

// 0: not read yet. Kernels ask on every call, so the answer is one relaxed
// load once the first call has settled it.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// The level the kernels run at: the CPU's, lowered to the cap if one is set.
/// A malformed cap is ignored here, with a warning, since kernels cannot fail;
/// the CLI refuses it at start (`check_env`).
pub fn active() -> CpuLevel {
    match ACTIVE.load(Relaxed) {
        0 => {
            let level = match requested() {
                Ok(cap) => cap.map_or(detected(), |cap| cap.min(detected())),
                Err(e) => {
                    eprintln!("warning: {e}; the kernels use the CPU's widest level");
                    detected()
                }
            };
            ACTIVE.store(level as u8, Relaxed);
            level
        }
        v => CpuLevel::from_u8(v),
    }
}

/// The CLI's check at start: a malformed `SQUADLAB_CPU_LEVEL` is an error.
pub fn check_env() -> Result<(), String> {
    requested().map(|_| ())
}

/// Whether this build's `gemm` has its AVX-512 kernels (the `avx512` feature).
pub const GEMM_AVX512_BUILT: bool = cfg!(feature = "avx512");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(CpuLevel::parse("AVX2"), Ok(CpuLevel::Avx2));
        assert_eq!(CpuLevel::parse(" avx512 "), Ok(CpuLevel::Avx512));
        assert_eq!(CpuLevel::parse("baseline"), Ok(CpuLevel::Baseline));
        let err = CpuLevel::parse("sse9").unwrap_err();
        assert!(
            err.contains("SQUADLAB_CPU_LEVEL") && err.contains("sse9"),
            "{err}"
        );
        assert!(CpuLevel::Baseline < CpuLevel::Avx2 && CpuLevel::Avx2 < CpuLevel::Avx512);
        // A cap never raises the level past the CPU.
        assert!(active() <= detected());
    }
}
