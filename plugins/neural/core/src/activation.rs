//! FANN's activation functions, with FANN's formulas, numbering and
//! steepness semantics: a neuron's sum is multiplied by its steepness (and
//! clamped to ±150/steepness) before the function is applied, and the
//! derivatives take the steepness again, exactly as libfann does. Functions
//! evaluate in `f64` where libfann's C promotes to `double` (exp, sin, the
//! stepwise tables) and round to `f32` where it stores a `fann_type`.

/// An activation function, numbered as in FANN's `fann_activationfunc_enum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Activation {
    /// `y = x`.
    Linear = 0,
    /// `y = x < 0 ? 0 : 1` (cannot be trained).
    Threshold = 1,
    /// `y = x < 0 ? -1 : 1` (cannot be trained).
    ThresholdSymmetric = 2,
    /// `y = 1 / (1 + exp(-2x))`.
    Sigmoid = 3,
    /// A stepwise linear approximation of the sigmoid.
    SigmoidStepwise = 4,
    /// `y = 2 / (1 + exp(-2x)) - 1` (tanh).
    SigmoidSymmetric = 5,
    /// A stepwise linear approximation of the symmetric sigmoid.
    SigmoidSymmetricStepwise = 6,
    /// `y = exp(-x²)`.
    Gaussian = 7,
    /// `y = 2 exp(-x²) - 1`.
    GaussianSymmetric = 8,
    /// Not implemented by FANN either (always 0).
    GaussianStepwise = 9,
    /// `y = (x/2) / (1 + |x|) + 0.5`.
    Elliot = 10,
    /// `y = x / (1 + |x|)`.
    ElliotSymmetric = 11,
    /// `y = clamp(x, 0, 1)`.
    LinearPiece = 12,
    /// `y = clamp(x, -1, 1)`.
    LinearPieceSymmetric = 13,
    /// `y = sin(x)`.
    SinSymmetric = 14,
    /// `y = cos(x)`.
    CosSymmetric = 15,
    /// `y = sin(x)/2 + 0.5`.
    Sin = 16,
    /// `y = cos(x)/2 + 0.5`.
    Cos = 17,
    /// ReLU: `y = max(x, 0)` (FANN 2.3's `FANN_LINEAR_PIECE_RECT`).
    Relu = 18,
    /// Leaky ReLU: `y = x < 0 ? 0.01x : x` (FANN 2.3's `FANN_LINEAR_PIECE_RECT_LEAKY`).
    LeakyRelu = 19,
}

impl Activation {
    /// Every function, in FANN's order.
    pub const ALL: [Activation; 20] = [
        Activation::Linear,
        Activation::Threshold,
        Activation::ThresholdSymmetric,
        Activation::Sigmoid,
        Activation::SigmoidStepwise,
        Activation::SigmoidSymmetric,
        Activation::SigmoidSymmetricStepwise,
        Activation::Gaussian,
        Activation::GaussianSymmetric,
        Activation::GaussianStepwise,
        Activation::Elliot,
        Activation::ElliotSymmetric,
        Activation::LinearPiece,
        Activation::LinearPieceSymmetric,
        Activation::SinSymmetric,
        Activation::CosSymmetric,
        Activation::Sin,
        Activation::Cos,
        Activation::Relu,
        Activation::LeakyRelu,
    ];

    /// The function with FANN number `n`.
    pub fn from_number(n: u32) -> Option<Self> {
        Self::ALL.get(n as usize).copied()
    }

    /// FANN's number for the function.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// FANN's name, e.g. `FANN_SIGMOID_SYMMETRIC`.
    pub fn fann_name(self) -> &'static str {
        FANN_NAMES[self as usize]
    }

    /// The function whose FANN name (or the name without `FANN_`, in any
    /// case) is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("FANN_") {
            upper
        } else {
            format!("FANN_{upper}")
        };
        let alias = match full.as_str() {
            "FANN_RELU" => "FANN_LINEAR_PIECE_RECT",
            "FANN_LEAKY_RELU" => "FANN_LINEAR_PIECE_RECT_LEAKY",
            other => other,
        };
        Self::ALL.iter().copied().find(|a| a.fann_name() == alias)
    }

    /// Whether outputs span -1..1 (FANN halves the error of these).
    pub fn is_symmetric(self) -> bool {
        matches!(
            self,
            Activation::LinearPieceSymmetric
                | Activation::ThresholdSymmetric
                | Activation::SigmoidSymmetric
                | Activation::SigmoidSymmetricStepwise
                | Activation::ElliotSymmetric
                | Activation::GaussianSymmetric
                | Activation::SinSymmetric
                | Activation::CosSymmetric
        )
    }

    /// The function applied to `sum`, which already includes the steepness
    /// (FANN's `fann_activation_switch`).
    pub fn apply(self, sum: f32) -> f32 {
        let x = f64::from(sum);
        match self {
            Activation::Linear => sum,
            Activation::LinearPiece => sum.clamp(0.0, 1.0),
            Activation::LinearPieceSymmetric => sum.clamp(-1.0, 1.0),
            Activation::Sigmoid => (1.0 / (1.0 + f64::from(-2.0f32 * sum).exp())) as f32,
            Activation::SigmoidSymmetric => {
                (2.0 / (1.0 + f64::from(-2.0f32 * sum).exp()) - 1.0) as f32
            }
            Activation::SigmoidSymmetricStepwise => {
                stepwise(&SIGMOID_SYMMETRIC_STEPS, -1.0, 1.0, x)
            }
            Activation::SigmoidStepwise => stepwise(&SIGMOID_STEPS, 0.0, 1.0, x),
            Activation::Threshold => {
                if sum < 0.0 {
                    0.0
                } else {
                    1.0
                }
            }
            Activation::ThresholdSymmetric => {
                if sum < 0.0 {
                    -1.0
                } else {
                    1.0
                }
            }
            Activation::Gaussian => f64::from(-sum * sum).exp() as f32,
            Activation::GaussianSymmetric => (f64::from(-sum * sum).exp() * 2.0 - 1.0) as f32,
            Activation::GaussianStepwise => 0.0,
            Activation::Elliot => (sum / 2.0) / (1.0 + sum.abs()) + 0.5,
            Activation::ElliotSymmetric => sum / (1.0 + sum.abs()),
            Activation::SinSymmetric => x.sin() as f32,
            Activation::CosSymmetric => x.cos() as f32,
            Activation::Sin => (x.sin() / 2.0 + 0.5) as f32,
            Activation::Cos => (x.cos() / 2.0 + 0.5) as f32,
            Activation::Relu => {
                if sum < 0.0 {
                    0.0
                } else {
                    sum
                }
            }
            Activation::LeakyRelu => {
                if sum < 0.0 {
                    (0.01 * x) as f32
                } else {
                    sum
                }
            }
        }
    }

    /// The derivative FANN trains with (`fann_activation_derived`), given
    /// the neuron's steepness, output `value` and `sum`. The functions FANN
    /// cannot train (thresholds, the Gaussian stepwise) give 0.
    pub fn derivative(self, steepness: f32, value: f32, sum: f32) -> f32 {
        let s = steepness;
        match self {
            Activation::Linear | Activation::LinearPiece | Activation::LinearPieceSymmetric => s,
            Activation::LeakyRelu => {
                if value < 0.0 {
                    (f64::from(s) * 0.01) as f32
                } else {
                    s
                }
            }
            Activation::Relu => {
                if value < 0.0 {
                    0.0
                } else {
                    s
                }
            }
            Activation::Sigmoid | Activation::SigmoidStepwise => {
                let v = value.clamp(0.01, 0.99);
                2.0 * s * v * (1.0 - v)
            }
            Activation::SigmoidSymmetric | Activation::SigmoidSymmetricStepwise => {
                let v = value.clamp(-0.98, 0.98);
                s * (1.0 - v * v)
            }
            Activation::Gaussian => -2.0 * sum * value * s * s,
            Activation::GaussianSymmetric => -2.0 * sum * (value + 1.0) * s * s,
            Activation::Elliot => {
                let d = 1.0 + sum.abs();
                s * 1.0 / (2.0 * d * d)
            }
            Activation::ElliotSymmetric => {
                let d = 1.0 + sum.abs();
                s * 1.0 / (d * d)
            }
            Activation::SinSymmetric => (f64::from(s) * f64::from(s * sum).cos()) as f32,
            Activation::CosSymmetric => (f64::from(s) * -f64::from(s * sum).sin()) as f32,
            Activation::Sin => (f64::from(s) * f64::from(s * sum).cos() / 2.0) as f32,
            Activation::Cos => (f64::from(s) * -f64::from(s * sum).sin() / 2.0) as f32,
            Activation::Threshold
            | Activation::ThresholdSymmetric
            | Activation::GaussianStepwise => 0.0,
        }
    }
}

const FANN_NAMES: [&str; 20] = [
    "FANN_LINEAR",
    "FANN_THRESHOLD",
    "FANN_THRESHOLD_SYMMETRIC",
    "FANN_SIGMOID",
    "FANN_SIGMOID_STEPWISE",
    "FANN_SIGMOID_SYMMETRIC",
    "FANN_SIGMOID_SYMMETRIC_STEPWISE",
    "FANN_GAUSSIAN",
    "FANN_GAUSSIAN_SYMMETRIC",
    "FANN_GAUSSIAN_STEPWISE",
    "FANN_ELLIOT",
    "FANN_ELLIOT_SYMMETRIC",
    "FANN_LINEAR_PIECE",
    "FANN_LINEAR_PIECE_SYMMETRIC",
    "FANN_SIN_SYMMETRIC",
    "FANN_COS_SYMMETRIC",
    "FANN_SIN",
    "FANN_COS",
    "FANN_LINEAR_PIECE_RECT",
    "FANN_LINEAR_PIECE_RECT_LEAKY",
];

/// Breakpoints (v1..v6) and values (r1..r6) of FANN's stepwise sigmoid,
/// written exactly as in `fann_activation.h`.
#[allow(clippy::excessive_precision)]
const SIGMOID_STEPS: [(f64, f64); 6] = [
    (-2.64665246009826660156e+00, 4.99999988824129104614e-03),
    (-1.47221946716308593750e+00, 5.00000007450580596924e-02),
    (-5.49306154251098632812e-01, 2.50000000000000000000e-01),
    (5.49306154251098632812e-01, 7.50000000000000000000e-01),
    (1.47221934795379638672e+00, 9.49999988079071044922e-01),
    (2.64665293693542480469e+00, 9.95000004768371582031e-01),
];

/// Breakpoints and values of FANN's stepwise symmetric sigmoid.
#[allow(clippy::excessive_precision)]
const SIGMOID_SYMMETRIC_STEPS: [(f64, f64); 6] = [
    (-2.64665293693542480469e+00, -9.90000009536743164062e-01),
    (-1.47221934795379638672e+00, -8.99999976158142089844e-01),
    (-5.49306154251098632812e-01, -5.00000000000000000000e-01),
    (5.49306154251098632812e-01, 5.00000000000000000000e-01),
    (1.47221934795379638672e+00, 8.99999976158142089844e-01),
    (2.64665293693542480469e+00, 9.90000009536743164062e-01),
];

/// FANN's `fann_stepwise`: `min` below the first breakpoint, `max` from the
/// last, and linear between neighbouring breakpoints.
fn stepwise(steps: &[(f64, f64); 6], min: f64, max: f64, x: f64) -> f32 {
    if x < steps[0].0 {
        return min as f32;
    }
    if x >= steps[5].0 {
        return max as f32;
    }
    let k = (1..6).find(|&k| x < steps[k].0).unwrap_or(5);
    let (v1, r1) = steps[k - 1];
    let (v2, r2) = steps[k];
    (((r2 - r1) * (x - v1)) / (v2 - v1) + r1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        for a in Activation::ALL {
            assert_eq!(Activation::from_number(a.number()), Some(a));
            assert_eq!(Activation::from_name(a.fann_name()), Some(a));
        }
        assert_eq!(
            Activation::from_name("sigmoid_symmetric"),
            Some(Activation::SigmoidSymmetric)
        );
        assert_eq!(Activation::from_name("relu"), Some(Activation::Relu));
        assert_eq!(Activation::from_number(20), None);
    }

    #[test]
    fn known_values() {
        assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
        assert!((Activation::SigmoidSymmetric.apply(0.5) - 0.5f64.tanh() as f32).abs() < 1e-6);
        assert_eq!(Activation::SigmoidStepwise.apply(-10.0), 0.0);
        assert_eq!(Activation::SigmoidStepwise.apply(10.0), 1.0);
        assert!((Activation::SigmoidStepwise.apply(0.0) - 0.5).abs() < 1e-6);
        assert_eq!(Activation::LeakyRelu.apply(-2.0), -0.02);
        assert_eq!(Activation::Elliot.apply(1.0), 0.75);
    }
}
