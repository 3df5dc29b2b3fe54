//! Which precision frozen-backbone passes (the linear probe's embeddings) take on this
//! machine, and why.
//!
//! On a CPU with native bfloat16 (AVX-512 BF16, or AMX on recent Intel Xeons) they run in
//! bfloat16 with the float32 first layers of [`super::precision`]; elsewhere libtorch
//! would only emulate bf16, slowly, so they run in float32. The two kinds of bf16 CPU
//! compute bf16 with different kernels (AMX tiles or AVX-512 dot products), so results
//! differ in the last bits between them. [`BF16_ENV`] overrides the choice, so that either
//! path can be run (and tested) on any machine: `off` gives float32 everywhere, `on` gives
//! bfloat16 everywhere (emulated, hence slow, without native support).

use std::sync::OnceLock;

/// The environment variable that overrides the choice: `on`, `off` or `auto` (default).
pub const BF16_ENV: &str = "TRANSFER_WORKBENCH_BF16";

/// The bfloat16 features of this CPU, as `/proc/cpuinfo` names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuBf16 {
    /// AVX-512 BF16 dot-product instructions.
    pub avx512_bf16: bool,
    /// AMX tiles with bf16 matrix multiply.
    pub amx_bf16: bool,
}

impl CpuBf16 {
    /// Whether the CPU computes bfloat16 natively.
    pub fn native(&self) -> bool {
        self.avx512_bf16 || self.amx_bf16
    }

    /// The features found, as `/proc/cpuinfo` names them ("none" without any).
    pub fn names(&self) -> String {
        let names: Vec<&str> = [
            (self.amx_bf16, "amx_bf16"),
            (self.avx512_bf16, "avx512_bf16"),
        ]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// This CPU's bfloat16 features (read once from `/proc/cpuinfo`; none elsewhere).
pub fn cpu_bf16() -> &'static CpuBf16 {
    static FEATURES: OnceLock<CpuBf16> = OnceLock::new();
    FEATURES.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = info
            .lines()
            .find(|l| l.starts_with("flags"))
            .unwrap_or_default();
        let has = |name: &str| flags.split_whitespace().any(|f| f == name);
        CpuBf16 {
            avx512_bf16: has("avx512_bf16"),
            amx_bf16: has("amx_bf16"),
        }
    })
}

/// What [`BF16_ENV`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Override {
    /// Decide by the CPU (unset, empty or `auto`).
    Auto,
    /// bfloat16 on every CPU (`on`, `1`, `true`).
    On,
    /// float32 on every CPU (`off`, `0`, `false`).
    Off,
}

impl Bf16Override {
    /// Parses the variable's value; `None` for a value it does not know.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Some(Self::Auto),
            "on" | "1" | "true" => Some(Self::On),
            "off" | "0" | "false" => Some(Self::Off),
            _ => None,
        }
    }

    /// The value of [`BF16_ENV`] in this process (an unknown value counts as `auto`; see
    /// [`frozen_precision_reason`], which names it).
    pub fn from_env() -> Self {
        std::env::var(BF16_ENV)
            .ok()
            .and_then(|v| Self::parse(&v))
            .unwrap_or(Self::Auto)
    }
}

/// Whether frozen-backbone passes on the CPU run in bfloat16 unless a run's config says.
pub fn bf16_by_default() -> bool {
    match Bf16Override::from_env() {
        Bf16Override::Auto => cpu_bf16().native(),
        Bf16Override::On => true,
        Bf16Override::Off => false,
    }
}

/// One line saying which precision CPU frozen-backbone passes take by default and why, for
/// logs and `backbones`.
pub fn frozen_precision_reason() -> String {
    let features = cpu_bf16();
    let raw = std::env::var(BF16_ENV).unwrap_or_default();
    let precision = if bf16_by_default() {
        "bfloat16"
    } else {
        "float32"
    };
    match Bf16Override::parse(&raw) {
        Some(Bf16Override::Auto) if features.native() => {
            format!(
                "{precision}: this CPU has native bf16 ({}); {BF16_ENV}=off for float32",
                features.names()
            )
        }
        Some(Bf16Override::Auto) => format!(
            "{precision}: this CPU has no native bf16 (AVX-512 BF16 or AMX); {BF16_ENV}=on forces bf16 (emulated, slow)"
        ),
        Some(_) => format!(
            "{precision}: set by {BF16_ENV}={raw} (CPU bf16 features: {})",
            features.names()
        ),
        None => format!(
            "{precision}: {BF16_ENV}={raw} is not on, off or auto, so the CPU decides (bf16 features: {})",
            features.names()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_parses_its_values() {
        assert_eq!(Bf16Override::parse("OFF"), Some(Bf16Override::Off));
        assert_eq!(Bf16Override::parse(" on "), Some(Bf16Override::On));
        assert_eq!(Bf16Override::parse("1"), Some(Bf16Override::On));
        assert_eq!(Bf16Override::parse(""), Some(Bf16Override::Auto));
        assert_eq!(Bf16Override::parse("fast"), None);
    }

    #[test]
    fn features_name_what_the_cpu_has() {
        let both = CpuBf16 {
            avx512_bf16: true,
            amx_bf16: true,
        };
        assert!(both.native());
        assert_eq!(both.names(), "amx_bf16, avx512_bf16");
        assert!(!CpuBf16::default().native());
        assert_eq!(CpuBf16::default().names(), "none");
    }
}
