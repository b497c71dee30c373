//! Parsing and printing of model-time durations (`"1.5ms"`, `"2s"`, `"250us"`) and byte sizes
//! (`"64KiB"`, `"1GB"`). All times inside migsim are integer microseconds of model time.

/// Parses a duration into microseconds. Accepted units: `us`, `ms`, `s`, `m`; a number with no
/// unit is rejected so that no one has to guess.
pub fn parse_duration_us(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit; write it as e.g. `250us`, `5ms`, `2s` or `1m`"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration; write it as e.g. `250us`, `5ms`, `2s`"))?;
    let scale = match unit.trim() {
        "us" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        "m" | "min" => 60_000_000.0,
        other => return Err(format!("unknown duration unit `{other}` in `{text}`; allowed: us, ms, s, m")),
    };
    let micros = number * scale;
    if micros.fract() != 0.0 {
        return Err(format!("`{text}` is finer than a microsecond, the model's resolution"));
    }
    Ok(micros as u64)
}

/// Parses a byte size. Accepted units: `B`, `KB`, `MB`, `GB` (powers of 1000) and `KiB`, `MiB`,
/// `GiB` (powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit; write it as e.g. `512B`, `64KiB`, `1GB`"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a byte size"))?;
    let scale: u64 = match unit.trim() {
        "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{text}`; allowed: B, KB, MB, GB, KiB, MiB, GiB")),
    };
    number.checked_mul(scale).ok_or_else(|| format!("`{text}` is too large"))
}

/// Prints microseconds the way a person reads them: `850us`, `12.5ms`, `3.2s`.
pub fn format_us(micros: u64) -> String {
    if micros < 1_000 {
        format!("{micros}us")
    } else if micros < 1_000_000 {
        format!("{}ms", trim_float(micros as f64 / 1_000.0))
    } else {
        format!("{}s", trim_float(micros as f64 / 1_000_000.0))
    }
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration_us("250us"), Ok(250));
        assert_eq!(parse_duration_us("1.5ms"), Ok(1_500));
        assert_eq!(parse_duration_us("2s"), Ok(2_000_000));
        assert_eq!(parse_duration_us("1m"), Ok(60_000_000));
        assert!(parse_duration_us("5").is_err());
        assert!(parse_duration_us("5h").is_err());
        assert!(parse_duration_us("0.5us").is_err());
    }

    #[test]
    fn sizes_parse_in_both_bases() {
        assert_eq!(parse_bytes("512B"), Ok(512));
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("1GB"), Ok(1_000_000_000));
        assert!(parse_bytes("12").is_err());
    }

    #[test]
    fn durations_print_for_people() {
        assert_eq!(format_us(850), "850us");
        assert_eq!(format_us(12_500), "12.5ms");
        assert_eq!(format_us(3_200_000), "3.2s");
    }
}
