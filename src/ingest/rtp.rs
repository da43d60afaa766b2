//! Keyframes out of an H.264 (RFC 6184) or H.265 (RFC 7798) RTP stream, sans-IO.
//!
//! The `health` profile looks at every packet's headers (for liveness and to tell keyframes) but
//! copies payload only for the keyframe it is going to decode. Parameter sets are remembered from
//! the session description and from the stream, and put in front of every keyframe handed out,
//! so that the keyframe decodes on its own.

use super::rtsp::VideoCodec;

/// What one RTP packet told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketInfo {
    /// The packet belongs to the video stream (right payload type, well-formed header).
    pub video: bool,
    /// A keyframe access unit started in this packet.
    pub keyframe_started: bool,
    /// What was being collected grew past `MAX_ACCESS_UNIT` and was dropped: fragments of one
    /// picture without end, from a broken or hostile camera.
    pub oversized: bool,
}

/// The most bytes one access unit (or one parameter set being reassembled) may take: a 4K
/// keyframe at a high bit rate is a few MiB.
pub const MAX_ACCESS_UNIT: usize = 8 << 20;

#[derive(Debug)]
pub struct KeyframeAssembler {
    codec: VideoCodec,
    payload_type: u8,
    /// VPS (H.265), SPS, PPS: the latest seen of each.
    params: [Option<Vec<u8>>; 3],
    ts: Option<u32>,
    next_seq: Option<u16>,
    /// The current access unit: is it a keyframe, is it being collected, is it intact.
    key: bool,
    collecting: bool,
    intact: bool,
    nals: Vec<Vec<u8>>,
    /// A fragmented NAL unit in progress.
    fragment: Option<Vec<u8>>,
    /// Bytes held in `nals` and `fragment`.
    held: usize,
    oversized: bool,
}

impl KeyframeAssembler {
    pub fn new(codec: VideoCodec, payload_type: u8, parameter_sets: &[Vec<u8>]) -> Self {
        let mut a = Self {
            codec,
            payload_type,
            params: [None, None, None],
            ts: None,
            next_seq: None,
            key: false,
            collecting: false,
            intact: true,
            nals: Vec::new(),
            fragment: None,
            held: 0,
            oversized: false,
        };
        for p in parameter_sets {
            a.remember(p);
        }
        a
    }

    /// Feeds one RTP packet. With `want`, the next complete keyframe access unit is collected and
    /// returned in Annex-B form (parameter sets first) when its last packet arrives.
    pub fn push(&mut self, rtp: &[u8], want: bool) -> (PacketInfo, Option<Vec<u8>>) {
        let mut info = PacketInfo::default();
        let Some(p) = parse_rtp(rtp) else { return (info, None) };
        if p.payload_type != self.payload_type {
            return (info, None);
        }
        info.video = true;
        let mut out = None;
        if self.ts != Some(p.timestamp) {
            // A new access unit (the previous one lost its marker packet).
            out = self.finish();
            self.ts = Some(p.timestamp);
            self.key = false;
            self.collecting = want;
            self.intact = true;
            self.nals.clear();
            self.fragment = None;
            self.held = 0;
        }
        if let Some(n) = self.next_seq
            && n != p.seq
        {
            self.intact = false;
            self.drop_fragment();
        }
        self.next_seq = Some(p.seq.wrapping_add(1));
        let was_key = self.key;
        self.depacketize(p.payload);
        info.keyframe_started = self.key && !was_key;
        info.oversized = std::mem::take(&mut self.oversized);
        if p.marker {
            out = out.or_else(|| self.finish());
            self.ts = None;
        }
        (info, out)
    }

    /// Ends the current access unit; returns it when it is a wanted, intact keyframe.
    fn finish(&mut self) -> Option<Vec<u8>> {
        let done = self.key && self.collecting && self.intact && !self.nals.is_empty();
        self.collecting = false;
        self.held = 0;
        self.fragment = None;
        let nals = std::mem::take(&mut self.nals);
        if !done {
            return None;
        }
        let mut au = Vec::with_capacity(nals.iter().map(|n| n.len() + 4).sum::<usize>() + 256);
        for p in self.params.iter().flatten() {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(p);
        }
        for n in nals.iter().filter(|n| self.param_slot(n).is_none()) {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(n);
        }
        Some(au)
    }

    fn nal_type(&self, nal: &[u8]) -> u8 {
        match self.codec {
            VideoCodec::H264 => nal.first().map_or(0, |b| b & 0x1f),
            VideoCodec::H265 => nal.first().map_or(0, |b| (b >> 1) & 0x3f),
        }
    }

    fn param_slot(&self, nal: &[u8]) -> Option<usize> {
        match (self.codec, self.nal_type(nal)) {
            (VideoCodec::H264, 7) | (VideoCodec::H265, 33) => Some(1),
            (VideoCodec::H264, 8) | (VideoCodec::H265, 34) => Some(2),
            (VideoCodec::H265, 32) => Some(0),
            _ => None,
        }
    }

    fn is_key(&self, ty: u8) -> bool {
        match self.codec {
            VideoCodec::H264 => ty == 5,
            VideoCodec::H265 => (16..=21).contains(&ty),
        }
    }

    fn remember(&mut self, nal: &[u8]) {
        if let Some(slot) = self.param_slot(nal)
            && self.params[slot].as_deref() != Some(nal)
        {
            self.params[slot] = Some(nal.to_vec());
        }
    }

    /// What arrived as one NAL unit. Some cameras put an Annex B byte stream there instead
    /// (start codes between NAL units, or before the first, e.g. SPS, PPS and the slice in one
    /// "single NAL" packet): it is split, so that a keyframe inside is seen.
    fn nal(&mut self, nal: &[u8]) {
        if memchr::memmem::find(nal, &[0, 0, 1]).is_none() {
            return self.nal_unit(nal);
        }
        for part in annex_b_units(nal) {
            self.nal_unit(part);
        }
    }

    /// One whole NAL unit of the current access unit.
    fn nal_unit(&mut self, nal: &[u8]) {
        if nal.is_empty() {
            return;
        }
        self.remember(nal);
        let ty = self.nal_type(nal);
        self.key |= self.is_key(ty);
        if self.collecting && self.hold(nal.len()) {
            self.nals.push(nal.to_vec());
        }
    }

    /// Counts `n` more bytes held; past the bound everything held is dropped, the access unit
    /// spoilt, and the packet reported oversized.
    fn hold(&mut self, n: usize) -> bool {
        self.held = self.held.saturating_add(n);
        if self.held <= MAX_ACCESS_UNIT {
            return true;
        }
        self.nals = Vec::new();
        self.fragment = None;
        self.held = 0;
        self.collecting = false;
        self.intact = false;
        self.oversized = true;
        false
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        debug_assert_eq!(
            self.held,
            self.nals.iter().map(Vec::len).sum::<usize>() + self.fragment.as_ref().map_or(0, Vec::len)
        );
        self.held
    }

    /// The start of a fragmented NAL unit: only its type is needed unless collecting.
    fn fragment_start(&mut self, header: &[u8], body: &[u8]) {
        let ty = self.nal_type(header);
        self.key |= self.is_key(ty);
        let params = self.param_slot(header).is_some();
        self.drop_fragment();
        if (self.collecting || params) && self.hold(header.len() + body.len()) {
            self.fragment = Some([header, body].concat());
        }
    }

    fn fragment_end(&mut self) {
        if let Some(n) = self.fragment.take() {
            if memchr::memmem::find(&n, &[0, 0, 1]).is_some() {
                // An Annex B byte stream sent as one fragmented NAL unit: its units one by one.
                self.held -= n.len();
                return self.nal(&n);
            }
            self.remember(&n);
            if self.collecting {
                self.nals.push(n);
            } else {
                self.held -= n.len();
            }
        }
    }

    /// Forgets the fragment in progress (and the bytes it held).
    fn drop_fragment(&mut self) {
        if let Some(f) = self.fragment.take() {
            self.held -= f.len();
        }
    }

    /// The NAL units of an aggregation packet (H.264 STAP-A, H.265 AP): each after a 16-bit size.
    fn aggregated(&mut self, mut body: &[u8]) {
        while body.len() >= 2 {
            let n = usize::from(u16::from_be_bytes([body[0], body[1]]));
            let Some(nal) = body.get(2..2 + n) else { break };
            self.nal(nal);
            body = &body[2 + n..];
        }
    }

    /// One fragment of a NAL unit (H.264 FU-A, H.265 FU): `fu` carries the start and end bits,
    /// `header` is the reconstructed NAL header.
    fn fragment(&mut self, fu: u8, header: &[u8], body: &[u8]) {
        if fu & 0x80 != 0 {
            self.fragment_start(header, body);
        } else if self.fragment.is_some()
            && self.hold(body.len())
            && let Some(f) = self.fragment.as_mut()
        {
            f.extend_from_slice(body);
        }
        if fu & 0x40 != 0 {
            self.fragment_end();
        }
    }

    fn depacketize(&mut self, pl: &[u8]) {
        match self.codec {
            VideoCodec::H264 => {
                let Some(&h) = pl.first() else { return };
                match h & 0x1f {
                    1..=23 => self.nal(pl),
                    // A payload that starts with a start code: an Annex B byte stream.
                    0 if pl.starts_with(&[0, 0, 1]) || pl.starts_with(&[0, 0, 0, 1]) => self.nal(pl),
                    24 => self.aggregated(&pl[1..]),
                    28 if pl.len() >= 2 => self.fragment(pl[1], &[(h & 0xe0) | (pl[1] & 0x1f)], &pl[2..]),
                    _ => {}
                }
            }
            VideoCodec::H265 => {
                if pl.len() < 2 {
                    return;
                }
                match (pl[0] >> 1) & 0x3f {
                    48 => self.aggregated(&pl[2..]),
                    49 if pl.len() >= 3 => {
                        self.fragment(pl[2], &[(pl[0] & 0x81) | ((pl[2] & 0x3f) << 1), pl[1]], &pl[3..])
                    }
                    50 => {}
                    _ => self.nal(pl),
                }
            }
        }
    }
}

/// The NAL units of an Annex B byte stream: split at `00 00 01`, each without the zero bytes
/// that pad it or begin the next start code (a NAL unit never ends in `00`).
fn annex_b_units(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = vec![0];
    starts.extend(memchr::memmem::find_iter(b, &[0, 0, 1]).map(|i| i + 3));
    let mut ends: Vec<usize> = starts[1..].iter().map(|s| s - 3).collect();
    ends.push(b.len());
    starts.into_iter().zip(ends).filter_map(move |(s, e)| {
        let mut e = e;
        while e > s && b[e - 1] == 0 {
            e -= 1;
        }
        (e > s).then(|| &b[s..e])
    })
}

/// One RTP packet's fixed header fields and payload (RFC 3550 §5.1).
pub(crate) struct Rtp<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// `None` for anything that is not a well-formed RTP version 2 packet.
pub(crate) fn parse_rtp(b: &[u8]) -> Option<Rtp<'_>> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(b[0] & 0x0f);
    let mut start = 12 + 4 * cc;
    if b[0] & 0x10 != 0 {
        let ext = b.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    Some(Rtp {
        payload_type: b[1] & 0x7f,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b.get(start..end)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn h264_keyframe_from_stap_and_fragments() {
        let mut a = KeyframeAssembler::new(VideoCodec::H264, 96, &[]);
        // SPS+PPS in a STAP-A, then an IDR in three FU-A packets, then a P frame.
        let stap = [24, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3];
        let (i, out) = a.push(&rtp(1, 100, false, &stap), true);
        assert!(i.video && !i.keyframe_started && out.is_none());
        let (i, _) = a.push(&rtp(2, 100, false, &[0x7c, 0x85, 0xaa]), true);
        assert!(i.keyframe_started);
        a.push(&rtp(3, 100, false, &[0x7c, 0x05, 0xbb]), true);
        let (_, out) = a.push(&rtp(4, 100, true, &[0x7c, 0x45, 0xcc]), true);
        assert_eq!(
            out.unwrap(),
            vec![0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0xaa, 0xbb, 0xcc],
            "parameter sets, then the reassembled IDR"
        );
        let (i, out) = a.push(&rtp(5, 200, true, &[0x41, 9]), true);
        assert!(i.video && !i.keyframe_started && out.is_none(), "a P frame is not a keyframe");
        // Unwanted keyframes are told but not returned; parameter sets are kept for later.
        let (i, out) = a.push(&rtp(6, 300, true, &[0x65, 1]), false);
        assert!(i.keyframe_started && out.is_none());
        let (_, out) = a.push(&rtp(7, 400, true, &[0x65, 2]), true);
        assert_eq!(out.unwrap(), vec![0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 2]);
    }

    #[test]
    fn annex_b_where_one_nal_unit_belongs_is_split() {
        // SPS, PPS and the IDR slice with start codes between them, in one single-NAL packet:
        // the keyframe is seen, the parameter sets are kept apart (so not doubled).
        let mut a = KeyframeAssembler::new(VideoCodec::H264, 96, &[]);
        let annex_b = [0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0xaa, 0, 0, 3, 0xbb, 0];
        let (i, out) = a.push(&rtp(1, 100, true, &annex_b), true);
        assert!(i.keyframe_started);
        let want = vec![0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0xaa, 0, 0, 3, 0xbb];
        assert_eq!(out.unwrap(), want);
        // The same with a start code in front, and as the whole of a fragmented unit.
        let mut a = KeyframeAssembler::new(VideoCodec::H264, 96, &[]);
        let mut led = vec![0, 0, 0, 1];
        led.extend_from_slice(&annex_b);
        let (i, out) = a.push(&rtp(1, 100, true, &led), true);
        assert!(i.keyframe_started);
        assert_eq!(out.unwrap(), want);
        let mut a = KeyframeAssembler::new(VideoCodec::H264, 96, &[]);
        a.push(&rtp(1, 100, false, &[0x7c, 0x87, 1, 2, 0, 0]), true);
        let (i, out) =
            a.push(&rtp(2, 100, true, &[0x7c, 0x47, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0xaa, 0, 0, 3, 0xbb]), true);
        assert!(i.keyframe_started);
        assert_eq!(out.unwrap(), want);
    }

    #[test]
    fn a_lost_packet_spoils_the_keyframe_and_other_payload_types_are_ignored() {
        let mut a = KeyframeAssembler::new(VideoCodec::H264, 96, &[vec![0x67, 1], vec![0x68, 2]]);
        a.push(&rtp(1, 100, false, &[0x7c, 0x85, 0xaa]), true);
        let (_, out) = a.push(&rtp(3, 100, true, &[0x7c, 0x45, 0xcc]), true);
        assert!(out.is_none(), "packet 2 is missing");
        let (_, out) = a.push(&rtp(4, 200, true, &[0x65, 7]), true);
        assert_eq!(out.unwrap(), vec![0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 7], "SDP sets");
        let mut other = rtp(5, 300, true, &[0x65, 1]);
        other[1] = 0x80 | 97;
        assert_eq!(a.push(&other, true).0, PacketInfo::default());
        assert_eq!(a.push(&[1, 2, 3], true).0, PacketInfo::default(), "not RTP");
    }

    #[test]
    fn h265_keyframe_from_aggregation_and_fragments() {
        let mut a = KeyframeAssembler::new(VideoCodec::H265, 96, &[]);
        // AP with VPS, SPS, PPS; then an IDR_W_RADL (19) in two FUs.
        let ap = [48 << 1, 1, 0, 2, 0x40, 1, 0, 2, 0x42, 1, 0, 2, 0x44, 1];
        a.push(&rtp(1, 10, false, &ap), true);
        let (i, _) = a.push(&rtp(2, 10, false, &[49 << 1, 1, 0x80 | 19, 0xaa]), true);
        assert!(i.keyframe_started);
        let (_, out) = a.push(&rtp(3, 10, true, &[49 << 1, 1, 0x40 | 19, 0xbb]), true);
        assert_eq!(
            out.unwrap(),
            vec![0, 0, 0, 1, 0x40, 1, 0, 0, 0, 1, 0x42, 1, 0, 0, 0, 1, 0x44, 1, 0, 0, 0, 1, 19 << 1, 1, 0xaa, 0xbb]
        );
        // TRAIL_R (1) is not a keyframe.
        let (i, out) = a.push(&rtp(4, 20, true, &[1 << 1, 1, 5]), true);
        assert!(!i.keyframe_started && out.is_none());
    }

    #[test]
    fn fragments_of_one_picture_without_end_are_dropped_at_the_bound() {
        let mut a = KeyframeAssembler::new(VideoCodec::H264, 96, &[]);
        let body = vec![0x42u8; 16 * 1024];
        // FU-A start of an IDR slice, then middle fragments for ever, one timestamp, no marker.
        let mut start = vec![0x7c, 0x85];
        start.extend_from_slice(&body);
        let (info, _) = a.push(&rtp(0, 7, false, &start), true);
        assert!(info.keyframe_started && !info.oversized);
        let mut mid = vec![0x7c, 0x05];
        mid.extend_from_slice(&body);
        let mut oversized_at = None;
        for seq in 1..2_000u16 {
            let (info, au) = a.push(&rtp(seq, 7, false, &mid), true);
            assert!(au.is_none());
            assert!(a.held() <= MAX_ACCESS_UNIT, "{} bytes held", a.held());
            if info.oversized && oversized_at.is_none() {
                oversized_at = Some(seq);
            }
        }
        // Reported once, when the bound was passed: 8 MiB is 512 fragments of 16 KiB, and the
        // 512th (the start and 511 more) carries one byte of NAL header on top.
        assert_eq!(oversized_at, Some(511));
        assert_eq!(a.held(), 0, "nothing collected after the drop");
        // The next picture is collected again.
        let (_, au) = a.push(&rtp(2_000, 8, true, &[0x65, 1, 2, 3]), true);
        assert!(au.is_some());
    }

    #[test]
    fn rtp_header_extensions_csrcs_and_padding() {
        let mut v = vec![0x80 | 0x20 | 0x10 | 1, 96 | 0x80, 0, 9, 0, 0, 0, 5, 0, 0, 0, 1];
        v.extend_from_slice(&[0, 0, 0, 2]); // one CSRC
        v.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension of one word
        v.extend_from_slice(&[0x65, 0x42]); // payload
        v.extend_from_slice(&[0, 0, 3]); // padding, count 3
        let p = parse_rtp(&v).unwrap();
        assert_eq!((p.seq, p.timestamp, p.marker, p.payload), (9, 5, true, &[0x65, 0x42][..]));
        assert!(parse_rtp(&v[..14]).is_none());
    }
}
