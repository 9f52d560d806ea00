//! Training data and FANN's `.data` text format:
//!
//! ```text
//! <pairs> <inputs> <outputs>
//! <input values of pair 1>
//! <output values of pair 1>
//! ...
//! ```

/// Why training data is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The text is not a FANN data file.
    #[error("bad .data file: {0}")]
    Parse(String),
    /// The shapes disagree.
    #[error("bad training data: {0}")]
    Shape(String),
}

/// The most values a data set may hold.
pub const MAX_VALUES: usize = 50_000_000;

/// Input/output pairs, stored flat.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainData {
    num_input: usize,
    num_output: usize,
    inputs: Vec<f32>,
    outputs: Vec<f32>,
}

impl TrainData {
    /// Data from `pairs` of (input, output) vectors, all of one shape.
    pub fn new(pairs: &[(Vec<f32>, Vec<f32>)]) -> Result<Self, DataError> {
        let (num_input, num_output) = match pairs.first() {
            Some((i, o)) => (i.len(), o.len()),
            None => return Err(DataError::Shape("no pairs".into())),
        };
        let mut data = Self::with_shape(num_input, num_output)?;
        for (k, (i, o)) in pairs.iter().enumerate() {
            data.push(i, o)
                .map_err(|e| DataError::Shape(format!("pair {k}: {e}")))?;
        }
        Ok(data)
    }

    /// Empty data of this shape.
    pub fn with_shape(num_input: usize, num_output: usize) -> Result<Self, DataError> {
        if num_input == 0 || num_output == 0 {
            return Err(DataError::Shape(
                "inputs and outputs must not be empty".into(),
            ));
        }
        Ok(Self {
            num_input,
            num_output,
            inputs: Vec::new(),
            outputs: Vec::new(),
        })
    }

    /// Adds a pair.
    pub fn push(&mut self, input: &[f32], output: &[f32]) -> Result<(), DataError> {
        if input.len() != self.num_input || output.len() != self.num_output {
            return Err(DataError::Shape(format!(
                "expected {} inputs and {} outputs, got {} and {}",
                self.num_input,
                self.num_output,
                input.len(),
                output.len()
            )));
        }
        if input.iter().chain(output).any(|v| !v.is_finite()) {
            return Err(DataError::Shape("values must be finite numbers".into()));
        }
        if self.inputs.len() + self.outputs.len() + input.len() + output.len() > MAX_VALUES {
            return Err(DataError::Shape(format!("more than {MAX_VALUES} values")));
        }
        self.inputs.extend_from_slice(input);
        self.outputs.extend_from_slice(output);
        Ok(())
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.inputs.len() / self.num_input
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Inputs per pair.
    pub fn num_input(&self) -> usize {
        self.num_input
    }

    /// Outputs per pair.
    pub fn num_output(&self) -> usize {
        self.num_output
    }

    /// Input `i`.
    pub fn input(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.num_input..(i + 1) * self.num_input]
    }

    /// Output `i`.
    pub fn output(&self, i: usize) -> &[f32] {
        &self.outputs[i * self.num_output..(i + 1) * self.num_output]
    }

    /// Every input value, pair after pair.
    pub fn inputs(&self) -> &[f32] {
        &self.inputs
    }

    /// Every output value, pair after pair.
    pub fn outputs(&self) -> &[f32] {
        &self.outputs
    }

    /// Scales every pair in place with `scaling` (inputs and outputs).
    pub fn scale(&mut self, scaling: &crate::scaling::Scaling) {
        for chunk in self.inputs.chunks_mut(self.num_input) {
            scaling.scale_input(chunk);
        }
        for chunk in self.outputs.chunks_mut(self.num_output) {
            scaling.scale_output(chunk);
        }
    }

    /// Parses FANN's `.data` text.
    pub fn parse(text: &str) -> Result<Self, DataError> {
        let mut tokens = text.split_ascii_whitespace();
        let mut header = |what: &str| -> Result<usize, DataError> {
            tokens
                .next()
                .ok_or_else(|| DataError::Parse(format!("missing {what} in the header")))?
                .parse::<usize>()
                .map_err(|e| DataError::Parse(format!("{what}: {e}")))
        };
        let pairs = header("the number of pairs")?;
        let num_input = header("the number of inputs")?;
        let num_output = header("the number of outputs")?;
        let total = pairs.saturating_mul(num_input.saturating_add(num_output));
        if total > MAX_VALUES {
            return Err(DataError::Parse(format!(
                "{total} values; at most {MAX_VALUES}"
            )));
        }
        let mut data = Self::with_shape(num_input, num_output)?;
        let mut read = |n: usize, pair: usize| -> Result<Vec<f32>, DataError> {
            (0..n)
                .map(|_| {
                    let t = tokens.next().ok_or_else(|| {
                        DataError::Parse(format!("pair {} is incomplete", pair + 1))
                    })?;
                    t.parse::<f32>().map_err(|_| {
                        DataError::Parse(format!("`{t}` in pair {} is not a number", pair + 1))
                    })
                })
                .collect()
        };
        for pair in 0..pairs {
            let input = read(num_input, pair)?;
            let output = read(num_output, pair)?;
            data.push(&input, &output)?;
        }
        Ok(data)
    }

    /// FANN's `.data` text (numbers in shortest round-trip form).
    pub fn to_fann_string(&self) -> String {
        let mut out = format!("{} {} {}\n", self.len(), self.num_input, self.num_output);
        for i in 0..self.len() {
            for row in [self.input(i), self.output(i)] {
                for v in row {
                    out.push_str(&format!("{v} "));
                }
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fanns_own_output_and_round_trips() {
        let text = "2 2 1\n1 -1 \n0.500000 \n0.250000 2 \n-1 \n";
        let data = TrainData::parse(text).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data.input(1), [0.25, 2.0]);
        assert_eq!(data.output(1), [-1.0]);
        assert_eq!(TrainData::parse(&data.to_fann_string()).unwrap(), data);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = TrainData::parse("2 2 1\n1 x\n").unwrap_err().to_string();
        assert!(err.contains("`x` in pair 1"), "{err}");
        let err = TrainData::parse("2 2 1\n1 1 1\n").unwrap_err().to_string();
        assert!(err.contains("pair 2 is incomplete"), "{err}");
        assert!(TrainData::parse("1 0 1\n1\n").is_err());
        assert!(TrainData::parse("99999999999 9999 9999").is_err());
    }
}
