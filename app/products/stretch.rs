//! The per-channel p2/p98 stretch and the 8-bit quantisation of method.md
//! section 2, with the reference's exact operation order in float64.

/// clip((x - p2) / (p98 - p2), 0, 1); 0 for NaN and for a flat channel.
pub fn unit_from_percentiles(x: f64, p2: f64, p98: f64) -> f64 {
    if x.is_nan() || p98 <= p2 {
        return 0.0;
    }
    ((x - p2) / (p98 - p2)).clamp(0.0, 1.0)
}

/// floor(v * 255) for v in [0, 1].
pub fn quantize(v: f64) -> u8 {
    (v * 255.0).floor().clamp(0.0, 255.0) as u8
}

/// The network's input value of an 8-bit sample: x / 127.5 - 1.
pub fn network_from_u8(v: u8) -> f32 {
    f32::from(v) / 127.5 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_steps_are_not_pushed_down() {
        // 255 * (1000 - 571) / (2425 - 571) is not an integer; 0.2 * 255 = 51 is.
        assert_eq!(quantize(unit_from_percentiles(30.0, 10.0, 110.0)), 51);
        assert_eq!(quantize(unit_from_percentiles(200.0, 10.0, 110.0)), 255);
        assert_eq!(quantize(unit_from_percentiles(f64::NAN, 10.0, 110.0)), 0);
        assert_eq!(network_from_u8(0), -1.0);
        assert_eq!(network_from_u8(255), 1.0);
    }
}
