//! An MPEG-2 Program Stream muxer (ISO/IEC 13818-1 §2.5) for one video stream, and the RTP
//! packetizer that carries it, the way GB/T 28181 devices (Hikvision, Dahua) send video: each
//! access unit is one pack (pack header; at every keyframe a system header and a program stream
//! map; then PES packets of at most 65 000 bytes of payload), and each pack goes out as RTP
//! packets of PT 96 with the marker bit on the frame's last packet. Written from the standard,
//! independent of any demuxer in the tree. Sans-IO: bytes in, bytes out.

/// The video codec of the elementary stream (its `stream_type` in the program stream map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsCodec {
    /// stream_type 0x1B.
    H264,
    /// stream_type 0x24.
    H265,
}

impl PsCodec {
    pub fn stream_type(self) -> u8 {
        match self {
            PsCodec::H264 => 0x1B,
            PsCodec::H265 => 0x24,
        }
    }
}

/// The video stream id of every PES packet.
pub const VIDEO_STREAM_ID: u8 = 0xE0;
/// Payload bytes of one PES packet at most (its length field counts 16 bits).
pub const PES_PAYLOAD_MAX: usize = 65_000;
/// `program_mux_rate` and `rate_bound`, in units of 50 bytes/s (what devices write: ~2.4 Mbit/s).
const MUX_RATE: u32 = 6106;

/// CRC-32 of MPEG-2 systems (polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final
/// XOR): the program stream map's CRC_32.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xFFFF_FFFF;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

/// Whether an Annex B access unit holds a keyframe: an IDR slice (H.264 NAL type 5) or an
/// IRAP picture (H.265 NAL types 16–21).
pub fn is_keyframe(codec: PsCodec, au: &[u8]) -> bool {
    nal_types(codec, au).any(|t| match codec {
        PsCodec::H264 => t == 5,
        PsCodec::H265 => (16..=21).contains(&t),
    })
}

/// The NAL unit types of an Annex B byte stream (after each 00 00 01 start code).
fn nal_types(codec: PsCodec, au: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 3 < au.len() {
            if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
                let h = au[i + 3];
                i += 3;
                return Some(match codec {
                    PsCodec::H264 => h & 0x1F,
                    PsCodec::H265 => (h >> 1) & 0x3F,
                });
            }
            i += 1;
        }
        None
    })
}

/// The pack header (14 bytes, MPEG-2, no stuffing) with its system clock reference.
pub fn pack_header(scr_90k: u64) -> [u8; 14] {
    let scr = scr_90k & 0x1_FFFF_FFFF;
    let ext: u64 = 0;
    [
        0x00,
        0x00,
        0x01,
        0xBA,
        (0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03)) as u8,
        ((scr >> 20) & 0xFF) as u8,
        (0x04 | ((scr >> 12) & 0xF8) | ((scr >> 13) & 0x03)) as u8,
        ((scr >> 5) & 0xFF) as u8,
        (0x04 | ((scr << 3) & 0xF8) | ((ext >> 7) & 0x03)) as u8,
        (0x01 | ((ext << 1) & 0xFE)) as u8,
        ((MUX_RATE >> 14) & 0xFF) as u8,
        ((MUX_RATE >> 6) & 0xFF) as u8,
        (((MUX_RATE << 2) & 0xFC) | 0x03) as u8,
        0xF8,
    ]
}

/// Reads the SCR back from a pack header (for tests and checks).
pub fn pack_scr(h: &[u8]) -> Option<u64> {
    if h.len() < 14 || h[..4] != [0, 0, 1, 0xBA] || h[4] & 0xC0 != 0x40 {
        return None;
    }
    let b = |i: usize| u64::from(h[i]);
    Some(
        ((b(4) >> 3) & 0x07) << 30
            | (b(4) & 0x03) << 28
            | b(5) << 20
            | ((b(6) >> 3) & 0x1F) << 15
            | (b(6) & 0x03) << 13
            | b(7) << 5
            | (b(8) >> 3),
    )
}

/// The system header: one video stream, no audio.
pub fn system_header() -> Vec<u8> {
    let mut v = vec![0x00, 0x00, 0x01, 0xBB, 0x00, 0x09];
    v.push(0x80 | ((MUX_RATE >> 15) & 0x7F) as u8);
    v.push(((MUX_RATE >> 7) & 0xFF) as u8);
    v.push((((MUX_RATE << 1) & 0xFE) | 0x01) as u8);
    // audio_bound 0, fixed_flag 0, CSPS_flag 0.
    v.push(0x00);
    // system_audio_lock, system_video_lock, marker, video_bound 1.
    v.push(0xE1);
    // packet_rate_restriction_flag 0, reserved.
    v.push(0x7F);
    // The video stream: P-STD_buffer_bound_scale 1 (units of 1024 bytes), 1024 of them.
    let size: u16 = 1024;
    v.extend_from_slice(&[VIDEO_STREAM_ID, 0xE0 | ((size >> 8) as u8 & 0x1F), (size & 0xFF) as u8]);
    v
}

/// The program stream map: one elementary stream (`codec`, stream id 0xE0), with its CRC_32.
pub fn program_stream_map(codec: PsCodec) -> Vec<u8> {
    let es_map = [codec.stream_type(), VIDEO_STREAM_ID, 0x00, 0x00];
    let length = 10 + es_map.len() as u16;
    let mut v = vec![0x00, 0x00, 0x01, 0xBC];
    v.extend_from_slice(&length.to_be_bytes());
    // current_next_indicator 1, reserved, version 0; reserved, marker.
    v.extend_from_slice(&[0xE0, 0xFF]);
    // program_stream_info_length 0.
    v.extend_from_slice(&[0x00, 0x00]);
    v.extend_from_slice(&(es_map.len() as u16).to_be_bytes());
    v.extend_from_slice(&es_map);
    let crc = crc32_mpeg2(&v);
    v.extend_from_slice(&crc.to_be_bytes());
    v
}

/// The 5 bytes of a PTS with prefix `0010`.
fn pts_bytes(pts: u64) -> [u8; 5] {
    let p = pts & 0x1_FFFF_FFFF;
    [
        (0x21 | ((p >> 29) & 0x0E)) as u8,
        ((p >> 22) & 0xFF) as u8,
        (((p >> 14) & 0xFE) | 0x01) as u8,
        ((p >> 7) & 0xFF) as u8,
        (((p << 1) & 0xFE) | 0x01) as u8,
    ]
}

/// PES packets of stream 0xE0 carrying `payload`, split every [`PES_PAYLOAD_MAX`] bytes; the
/// first carries the PTS.
pub fn pes_packets(payload: &[u8], pts_90k: u64, out: &mut Vec<u8>) {
    let mut first = true;
    let chunks: Vec<&[u8]> = if payload.is_empty() { vec![payload] } else { payload.chunks(PES_PAYLOAD_MAX).collect() };
    for chunk in chunks {
        let header_data: &[u8] = if first { &pts_bytes(pts_90k) } else { &[] };
        let len = 3 + header_data.len() + chunk.len();
        out.extend_from_slice(&[0x00, 0x00, 0x01, VIDEO_STREAM_ID]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        // '10', not scrambled, data_alignment_indicator on the first, original.
        out.push(if first { 0x85 } else { 0x81 });
        out.push(if first { 0x80 } else { 0x00 });
        out.push(header_data.len() as u8);
        out.extend_from_slice(header_data);
        out.extend_from_slice(chunk);
        first = false;
    }
}

/// Muxes access units into packs.
#[derive(Debug, Clone)]
pub struct PsMuxer {
    codec: PsCodec,
}

impl PsMuxer {
    pub fn new(codec: PsCodec) -> Self {
        Self { codec }
    }

    /// One access unit (Annex B) at `pts_90k` as one pack: pack header, at a keyframe the system
    /// header and the program stream map, then its PES packets.
    pub fn mux(&mut self, au: &[u8], pts_90k: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(au.len() + 64 + au.len() / PES_PAYLOAD_MAX * 14);
        out.extend_from_slice(&pack_header(pts_90k));
        if is_keyframe(self.codec, au) {
            out.extend_from_slice(&system_header());
            out.extend_from_slice(&program_stream_map(self.codec));
        }
        pes_packets(au, pts_90k, &mut out);
        out
    }
}

/// RTP payload bytes per packet at most.
pub const RTP_PAYLOAD_MAX: usize = 1400;

/// RTP (RFC 3550) for one stream: version 2, no padding, extension or CSRCs.
#[derive(Debug, Clone)]
pub struct RtpPacketizer {
    pub payload_type: u8,
    pub ssrc: u32,
    seq: u16,
}

impl RtpPacketizer {
    pub fn new(payload_type: u8, ssrc: u32, first_seq: u16) -> Self {
        Self { payload_type, ssrc, seq: first_seq }
    }

    /// The next sequence number to be used.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }

    /// One frame's bytes as RTP packets of at most [`RTP_PAYLOAD_MAX`] payload bytes, all with
    /// timestamp `ts_90k`, the marker bit on the last.
    pub fn packetize(&mut self, frame: &[u8], ts_90k: u32) -> Vec<Vec<u8>> {
        let chunks: Vec<&[u8]> = frame.chunks(RTP_PAYLOAD_MAX).collect();
        let n = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut p = Vec::with_capacity(12 + chunk.len());
                p.push(0x80);
                p.push(if i + 1 == n { 0x80 } else { 0x00 } | (self.payload_type & 0x7F));
                p.extend_from_slice(&self.seq.to_be_bytes());
                p.extend_from_slice(&ts_90k.to_be_bytes());
                p.extend_from_slice(&self.ssrc.to_be_bytes());
                p.extend_from_slice(chunk);
                self.seq = self.seq.wrapping_add(1);
                p
            })
            .collect()
    }
}

/// RFC 4571 framing (RTP over a TCP connection): a 2-byte big-endian length before the packet.
pub fn rfc4571(packet: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + packet.len());
    v.extend_from_slice(&(packet.len() as u16).to_be_bytes());
    v.extend_from_slice(packet);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_mpeg2_check_value() {
        // The CRC-32/MPEG-2 catalogue's check value for "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        // A whole map, its CRC included, leaves a remainder of 0.
        assert_eq!(crc32_mpeg2(&program_stream_map(PsCodec::H264)), 0);
    }

    #[test]
    fn pack_header_carries_the_scr() {
        for scr in [0u64, 1, 3600, 90_000 * 3600 * 7 + 12_345, 0x1_FFFF_FFFF] {
            let h = pack_header(scr);
            assert_eq!(pack_scr(&h), Some(scr), "{scr}");
            // The marker bits.
            assert_eq!(h[4] & 0x04, 0x04);
            assert_eq!(h[6] & 0x04, 0x04);
            assert_eq!(h[8] & 0x04, 0x04);
            assert_eq!(h[9] & 0x01, 0x01);
            assert_eq!(h[12] & 0x03, 0x03);
        }
    }

    #[test]
    fn psm_and_system_header_lengths() {
        let m = program_stream_map(PsCodec::H265);
        assert_eq!(usize::from(u16::from_be_bytes([m[4], m[5]])), m.len() - 6);
        assert_eq!(&m[12..14], &[0x24, 0xE0]);
        let s = system_header();
        assert_eq!(usize::from(u16::from_be_bytes([s[4], s[5]])), s.len() - 6);
    }

    #[test]
    fn pes_split_at_65000_bytes_and_pts_on_the_first() {
        let payload: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        pes_packets(&payload, 0x1_2345_6789, &mut out);
        let mut at = 0;
        let mut got = Vec::new();
        let mut n = 0;
        while at < out.len() {
            assert_eq!(&out[at..at + 4], &[0, 0, 1, 0xE0]);
            let len = usize::from(u16::from_be_bytes([out[at + 4], out[at + 5]]));
            let hl = usize::from(out[at + 8]);
            if n == 0 {
                assert_eq!(out[at + 7], 0x80, "PTS only");
                let p = &out[at + 9..at + 14];
                let pts = (u64::from(p[0] >> 1) & 7) << 30
                    | u64::from(p[1]) << 22
                    | u64::from(p[2] >> 1) << 15
                    | u64::from(p[3]) << 7
                    | u64::from(p[4] >> 1);
                assert_eq!(pts, 0x1_2345_6789);
            } else {
                assert_eq!(hl, 0);
            }
            got.extend_from_slice(&out[at + 9 + hl..at + 6 + len]);
            assert!(len - 3 - hl <= PES_PAYLOAD_MAX);
            at += 6 + len;
            n += 1;
        }
        assert_eq!(n, 3);
        assert_eq!(got, payload);
    }

    #[test]
    fn keyframes_get_system_header_and_map() {
        let idr = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9, 9];
        let p = [0, 0, 0, 1, 0x41, 9, 9];
        let mut m = PsMuxer::new(PsCodec::H264);
        let a = m.mux(&idr, 3000);
        assert_eq!(&a[14..18], &[0, 0, 1, 0xBB]);
        let b = m.mux(&p, 6000);
        assert_eq!(&b[14..18], &[0, 0, 1, 0xE0]);
        assert!(is_keyframe(PsCodec::H265, &[0, 0, 1, 19 << 1, 1]));
        assert!(!is_keyframe(PsCodec::H265, &[0, 0, 1, 1 << 1, 1]));
    }

    #[test]
    fn rtp_packets_marker_seq_ts_and_sizes() {
        let mut r = RtpPacketizer::new(96, 0x0102_0304, 65_534);
        let frame: Vec<u8> = (0..3_000u32).map(|i| i as u8).collect();
        let pkts = r.packetize(&frame, 90_000);
        assert_eq!(pkts.len(), 3);
        let mut joined = Vec::new();
        for (i, p) in pkts.iter().enumerate() {
            assert_eq!(p[0], 0x80, "version 2");
            assert_eq!(p[1] & 0x7F, 96);
            assert_eq!(p[1] & 0x80 != 0, i == 2, "marker on the last only");
            assert_eq!(u16::from_be_bytes([p[2], p[3]]), 65_534u16.wrapping_add(i as u16));
            assert_eq!(u32::from_be_bytes([p[4], p[5], p[6], p[7]]), 90_000);
            assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), 0x0102_0304);
            assert!(p.len() - 12 <= RTP_PAYLOAD_MAX);
            joined.extend_from_slice(&p[12..]);
        }
        assert_eq!(joined, frame);
        assert_eq!(pkts[0].len(), 12 + 1400);
        assert_eq!(pkts[2].len(), 12 + 200);
        let next = r.packetize(&[1, 2, 3], 93_600);
        assert_eq!(u16::from_be_bytes([next[0][2], next[0][3]]), 1, "wraps");
        assert_eq!(next[0][1], 0x80 | 96);
        assert_eq!(rfc4571(&next[0])[..2], [0, 15]);
    }
}
