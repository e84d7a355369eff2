//! Minimal writer of NumPy `.npy` files (format version 1.0, little-endian f64, C order).

/// Encodes a row-major f64 array of the given shape as `.npy` bytes.
pub fn encode_f64(values: &[f64], shape: &[usize]) -> Vec<u8> {
    assert_eq!(
        values.len(),
        shape.iter().product::<usize>(),
        "npy: shape does not match data"
    );
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // magic (6) + version (2) + header length (2) + header + '\n' must be a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 8 * values.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// An `.npz` archive (what `numpy.savez` writes: one `<name>.npy` per array, stored
/// uncompressed) of f64 arrays; entries carry a fixed timestamp so that the same arrays give the
/// same bytes.
pub fn encode_npz(arrays: &[crate::record::NamedArray]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::FileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, values, shape) in arrays {
        zip.start_file(format!("{name}.npy"), options)?;
        zip.write_all(&encode_f64(values, shape))?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64_and_data_is_little_endian() {
        let b = encode_f64(&[1.0, -2.5, 3.0, 0.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'descr': '<f8'") && header.contains("'shape': (2, 3)"));
        assert!(header.ends_with('\n'));
        let data = &b[10 + hlen..];
        assert_eq!(data.len(), 48);
        assert_eq!(f64::from_le_bytes(data[8..16].try_into().unwrap()), -2.5);
        let one = encode_f64(&[7.0], &[1]);
        assert!(std::str::from_utf8(&one[10..74]).unwrap().contains("(1,)"));
    }
}
