//! MS-WSMV 2.2.9.1.1 message encryption framing: a SOAP body sealed by the authentication
//! context travels as `multipart/encrypted` with protocol `application/HTTP-SPNEGO-session-encrypted`,
//! the sealed part being `<u32 LE header length><signature/wrap header><sealed SOAP>` followed
//! directly (no CRLF) by the closing boundary. Used in both directions, faults included.

use crate::winrm::error::WinrmError;

/// The protocol of NTLM/Kerberos (SPNEGO) session encryption.
pub const SPNEGO_PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";
/// The MIME boundary Windows and the Python clients use.
pub const BOUNDARY: &str = "Encrypted Boundary";
/// The plaintext content type of a SOAP 1.2 message.
pub const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";

/// Seals and unseals messages with an established security context.
pub trait Sealer: Send + Sync {
    /// Seals `plain`: returns the signature / wrap header and the sealed bytes.
    fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WinrmError>;
    /// Verifies and unseals a message sealed by the peer.
    fn unseal(&mut self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, WinrmError>;
}

/// The `Content-Type` header value of an encrypted body.
pub fn content_type() -> String {
    format!("multipart/encrypted;protocol=\"{SPNEGO_PROTOCOL}\";boundary=\"{BOUNDARY}\"")
}

/// True if a `Content-Type` value announces an SPNEGO-encrypted multipart body.
pub fn is_encrypted(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("multipart/encrypted") && ct.contains(&SPNEGO_PROTOCOL.to_ascii_lowercase())
}

/// Seals a SOAP message and frames it as an encrypted multipart body.
pub fn encrypt(sealer: &mut dyn Sealer, plain: &[u8]) -> Result<Vec<u8>, WinrmError> {
    let (header, sealed) = sealer.seal(plain)?;
    let header_len = u32::try_from(header.len()).map_err(|_| WinrmError::Crypto("signature too long".into()))?;
    let mut body = Vec::with_capacity(plain.len() + header.len() + 256);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\n\tContent-Type: {SPNEGO_PROTOCOL}\r\n\tOriginalContent: type={SOAP_CONTENT_TYPE};Length={}\r\n--{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n",
            plain.len()
        )
        .as_bytes(),
    );
    body.extend_from_slice(&header_len.to_le_bytes());
    body.extend_from_slice(&header);
    body.extend_from_slice(&sealed);
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    Ok(body)
}

/// The parts of an encrypted body before unsealing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The announced plaintext length.
    pub length: usize,
    /// The signature / wrap header.
    pub header: &'a [u8],
    /// The sealed SOAP.
    pub sealed: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Splits an encrypted multipart body into its announced length, header and sealed payload.
pub fn split(body: &[u8]) -> Result<Framed<'_>, WinrmError> {
    let bad = |what: &str| WinrmError::Crypto(format!("malformed encrypted body: {what}"));
    let opener = format!("--{BOUNDARY}\r\n");
    if !body.starts_with(opener.as_bytes()) {
        return Err(bad("does not start with the boundary"));
    }
    let second = find(body, opener.as_bytes(), opener.len()).ok_or_else(|| bad("no second part"))?;
    let headers = std::str::from_utf8(&body[opener.len()..second]).map_err(|_| bad("part headers are not text"))?;
    if !headers.to_ascii_lowercase().contains(&SPNEGO_PROTOCOL.to_ascii_lowercase()) {
        return Err(bad("first part is not SPNEGO session-encrypted"));
    }
    let length = headers
        .split(';')
        .find_map(|kv| {
            let kv = kv.trim();
            kv.strip_prefix("Length=").or_else(|| kv.strip_prefix("length="))
        })
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| bad("no OriginalContent Length"))?;
    let after = second + opener.len();
    let octet = b"\tContent-Type: application/octet-stream\r\n";
    let data_start = if body.get(after..after + octet.len()) == Some(octet) {
        after + octet.len()
    } else {
        // Tolerate a part header without the leading tab or in another case.
        let line_end = find(body, b"\r\n", after).ok_or_else(|| bad("no octet-stream part header"))?;
        let line = String::from_utf8_lossy(&body[after..line_end]).to_ascii_lowercase();
        if !line.contains("application/octet-stream") {
            return Err(bad("second part is not application/octet-stream"));
        }
        line_end + 2
    };
    let len_bytes: [u8; 4] =
        body.get(data_start..data_start + 4).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("truncated header length"))?;
    let header_len = u32::from_le_bytes(len_bytes) as usize;
    let header_start = data_start + 4;
    let sealed_start = header_start.checked_add(header_len).ok_or_else(|| bad("header length overflow"))?;
    let sealed_end = sealed_start.checked_add(length).ok_or_else(|| bad("length overflow"))?;
    let header = body.get(header_start..sealed_start).ok_or_else(|| bad("truncated signature"))?;
    let sealed = body.get(sealed_start..sealed_end).ok_or_else(|| bad("truncated payload"))?;
    let rest = &body[sealed_end..];
    let closer = format!("--{BOUNDARY}--");
    let rest = rest.strip_prefix(b"\r\n".as_slice()).unwrap_or(rest);
    if !rest.starts_with(closer.as_bytes()) {
        return Err(bad("payload is not followed by the closing boundary"));
    }
    Ok(Framed { length, header, sealed })
}

/// Unframes and unseals an encrypted multipart body.
pub fn decrypt(sealer: &mut dyn Sealer, body: &[u8]) -> Result<Vec<u8>, WinrmError> {
    let framed = split(body)?;
    let plain = sealer.unseal(framed.header, framed.sealed)?;
    if plain.len() != framed.length {
        return Err(WinrmError::Crypto(format!("unsealed {} bytes, {} announced", plain.len(), framed.length)));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy sealer: XOR with a byte, header = 16 copies of the byte.
    struct Xor(u8);

    impl Sealer for Xor {
        fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WinrmError> {
            Ok((vec![self.0; 16], plain.iter().map(|b| b ^ self.0).collect()))
        }
        fn unseal(&mut self, header: &[u8], sealed: &[u8]) -> Result<Vec<u8>, WinrmError> {
            if header != [self.0; 16] {
                return Err(WinrmError::Crypto("bad signature".into()));
            }
            Ok(sealed.iter().map(|b| b ^ self.0).collect())
        }
    }

    #[test]
    fn frame_has_the_exact_wire_layout() {
        let body = encrypt(&mut Xor(1), b"<x/>").unwrap();
        let mut expected = b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=4\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n".to_vec();
        expected.extend_from_slice(&16u32.to_le_bytes());
        expected.extend_from_slice(&[1; 16]);
        expected.extend_from_slice(&[b'<' ^ 1, b'x' ^ 1, b'/' ^ 1, b'>' ^ 1]);
        expected.extend_from_slice(b"--Encrypted Boundary--\r\n");
        assert_eq!(body, expected);
        assert_eq!(decrypt(&mut Xor(1), &body).unwrap(), b"<x/>");
        assert!(is_encrypted(&content_type()));
        assert!(!is_encrypted("application/soap+xml;charset=UTF-8"));
    }

    #[test]
    fn payload_containing_the_boundary_text_survives() {
        let plain = b"--Encrypted Boundary--\r\n and more".to_vec();
        let body = encrypt(&mut Xor(0), &plain).unwrap();
        assert_eq!(decrypt(&mut Xor(0), &body).unwrap(), plain);
    }

    #[test]
    fn damaged_frames_are_errors() {
        let body = encrypt(&mut Xor(7), b"hello").unwrap();
        // Only the final CRLF is optional.
        assert!(decrypt(&mut Xor(7), &body[..body.len() - 2]).is_ok());
        for cut in 0..body.len() - 2 {
            assert!(decrypt(&mut Xor(7), &body[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decrypt(&mut Xor(8), &body).is_err(), "wrong key");
        let mut lying = body.clone();
        let pos = find(&lying, b"Length=5", 0).unwrap();
        lying[pos + 7] = b'9';
        assert!(decrypt(&mut Xor(7), &lying).is_err());
    }
}
