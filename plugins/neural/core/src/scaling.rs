//! Input and output scaling as FANN does it (`fann_set_scaling_params`,
//! `fann_scale_input`, `fann_descale_output`): each value is standardised by
//! the training data's mean and standard deviation, then mapped so that ±1
//! deviation lands on the new minimum and maximum.

use crate::data::TrainData;

/// Per-value scaling parameters, for inputs and for outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    /// Input means.
    pub mean_in: Vec<f32>,
    /// Input standard deviations.
    pub deviation_in: Vec<f32>,
    /// The new minimum of each input.
    pub new_min_in: Vec<f32>,
    /// `(new max − new min) / 2` of each input.
    pub factor_in: Vec<f32>,
    /// Output means.
    pub mean_out: Vec<f32>,
    /// Output standard deviations.
    pub deviation_out: Vec<f32>,
    /// The new minimum of each output.
    pub new_min_out: Vec<f32>,
    /// `(new max − new min) / 2` of each output.
    pub factor_out: Vec<f32>,
}

fn column_stats(
    rows: usize,
    width: usize,
    value: impl Fn(usize, usize) -> f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0.0f32; width];
    let mut deviation = vec![0.0f32; width];
    for (c, m) in mean.iter_mut().enumerate() {
        for r in 0..rows {
            *m += value(r, c);
        }
        *m /= rows as f32;
    }
    for (c, d) in deviation.iter_mut().enumerate() {
        for r in 0..rows {
            let diff = value(r, c) - mean[c];
            *d += diff * diff;
        }
        *d = (*d / rows as f32).sqrt();
    }
    (mean, deviation)
}

impl Scaling {
    /// Parameters that map `data` to [in_min, in_max] and [out_min, out_max].
    pub fn from_data(
        data: &TrainData,
        in_min: f32,
        in_max: f32,
        out_min: f32,
        out_max: f32,
    ) -> Self {
        let (mean_in, deviation_in) =
            column_stats(data.len(), data.num_input(), |r, c| data.input(r)[c]);
        let (mean_out, deviation_out) =
            column_stats(data.len(), data.num_output(), |r, c| data.output(r)[c]);
        let n_in = data.num_input();
        let n_out = data.num_output();
        Self {
            mean_in,
            deviation_in,
            new_min_in: vec![in_min; n_in],
            factor_in: vec![(in_max - in_min) / (1.0 - (-1.0)); n_in],
            mean_out,
            deviation_out,
            new_min_out: vec![out_min; n_out],
            factor_out: vec![(out_max - out_min) / (1.0 - (-1.0)); n_out],
        }
    }

    fn scale(x: f32, mean: f32, deviation: f32, factor: f32, new_min: f32) -> f32 {
        ((x - mean) / deviation - (-1.0)) * factor + new_min
    }

    fn descale(y: f32, mean: f32, deviation: f32, factor: f32, new_min: f32) -> f32 {
        ((y - new_min) / factor - 1.0) * deviation + mean
    }

    /// Scales an input vector in place.
    pub fn scale_input(&self, input: &mut [f32]) {
        for (i, x) in input.iter_mut().enumerate() {
            *x = Self::scale(
                *x,
                self.mean_in[i],
                self.deviation_in[i],
                self.factor_in[i],
                self.new_min_in[i],
            );
        }
    }

    /// Scales an output vector in place (for training targets).
    pub fn scale_output(&self, output: &mut [f32]) {
        for (i, y) in output.iter_mut().enumerate() {
            *y = Self::scale(
                *y,
                self.mean_out[i],
                self.deviation_out[i],
                self.factor_out[i],
                self.new_min_out[i],
            );
        }
    }

    /// Maps network outputs back to the data's units, in place.
    pub fn descale_output(&self, output: &mut [f32]) {
        for (i, y) in output.iter_mut().enumerate() {
            *y = Self::descale(
                *y,
                self.mean_out[i],
                self.deviation_out[i],
                self.factor_out[i],
                self.new_min_out[i],
            );
        }
    }
}
