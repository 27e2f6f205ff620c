//! AS numbers (RFC 6793: 4 bytes; 0 is reserved, RFC 7607). One definition for
//! `Config::build` and the CRD schema's bounds on `myASN`, `peerASN` and `localASN`.

/// A valid AS number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asn(u32);

impl Asn {
    /// Smallest valid ASN (the schema's `minimum`).
    pub const MIN: u32 = 1;
    /// Largest valid ASN (the schema's `maximum`).
    pub const MAX: u32 = u32::MAX;
    /// The error message, in config errors.
    pub const MESSAGE: &'static str = "ASN must be between 1 and 4294967295";

    /// `Err` for 0 (reserved).
    pub fn new(n: u32) -> Result<Asn, &'static str> {
        if n >= Self::MIN {
            Ok(Asn(n))
        } else {
            Err(Self::MESSAGE)
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_reserved() {
        assert!(Asn::new(0).is_err());
        assert_eq!(Asn::new(1).map(Asn::get), Ok(1));
        assert_eq!(Asn::new(u32::MAX).map(Asn::get), Ok(u32::MAX));
    }
}
