//! Content-addressed blobs (receipt images): addressed by the SHA-256 of their bytes.

/// The largest blob accepted, in bytes (20 MiB).
pub const MAX_BLOB_BYTES: usize = 20 << 20;

/// The media types a receipt image may have.
pub const IMAGE_TYPES: [&str; 5] = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "image/tiff",
];

/// The canonical image type for a `Content-Type` value (parameters and case ignored), if it is
/// one receipts may have.
pub fn image_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    IMAGE_TYPES.into_iter().find(|t| *t == essence)
}

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(input.to_owned()))
        } else {
            Err(format!(
                "{:?} is not a SHA-256 digest (64 lowercase hex digits)",
                input.chars().take(80).collect::<String>()
            ))
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(bytes);
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_64_lowercase_hex_digits() {
        let empty = Sha256::of(b"");
        assert_eq!(
            empty.as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Sha256::parse(empty.as_str()), Ok(empty.clone()));
        assert!(Sha256::parse(&empty.as_str().to_uppercase()).is_err());
        assert!(Sha256::parse("abc").is_err());
        assert!(Sha256::parse("../../etc/passwd").is_err());
    }

    #[test]
    fn only_image_types_are_receipts() {
        assert_eq!(image_type("image/JPEG; q=1"), Some("image/jpeg"));
        assert_eq!(image_type("application/pdf"), None);
        assert_eq!(image_type("image/svg+xml"), None, "SVG can carry scripts");
    }
}
