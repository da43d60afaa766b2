//! Which access units a decoder can skip: pure functions over Annex-B byte streams (sans-IO).
//!
//! A street camera needs 5 pictures a second from a 25 fps stream. Pictures no other picture
//! refers to (H.264 `nal_ref_idc == 0`, H.265 sub-layer non-reference NAL types) can be dropped
//! before the decoder at no cost to the rest; a stream without such pictures gains nothing.

/// The NAL unit headers in an Annex-B buffer (the first bytes after each start code).
fn nal_headers(au: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 3 <= au.len() {
            if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
                let start = i + 3;
                i = start;
                if start < au.len() {
                    return Some(&au[start..au.len().min(start + 2)]);
                }
            } else {
                i += 1;
            }
        }
        None
    })
}

/// True when no picture refers to this H.264 access unit and it carries no parameter sets.
pub fn h264_droppable(au: &[u8]) -> bool {
    let mut slices = 0;
    for h in nal_headers(au) {
        let (ref_idc, ty) = ((h[0] >> 5) & 0x3, h[0] & 0x1f);
        match ty {
            1 | 5 => {
                if ref_idc != 0 || ty == 5 {
                    return false;
                }
                slices += 1;
            }
            7 | 8 => return false,
            _ => {}
        }
    }
    slices > 0
}

/// True when every picture NAL of this H.265 access unit is a sub-layer non-reference one.
pub fn h265_droppable(au: &[u8]) -> bool {
    let mut slices = 0;
    for h in nal_headers(au) {
        let ty = (h[0] >> 1) & 0x3f;
        match ty {
            0..=31 => {
                if !(ty <= 14 && ty % 2 == 0) {
                    return false;
                }
                slices += 1;
            }
            32..=34 => return false,
            _ => {}
        }
    }
    slices > 0
}

/// Decides, second by second, whether dropping non-reference pictures still leaves enough for
/// the output rate: it drops only while reference pictures alone arrive at ≥ 1.2 × the target.
#[derive(Debug)]
pub struct NonRefFilter {
    target_fps: f64,
    window_start_ms: i64,
    refs: u32,
    dropping: bool,
}

impl NonRefFilter {
    pub fn new(target_fps: f64) -> Self {
        Self { target_fps, window_start_ms: -1, refs: 0, dropping: false }
    }

    /// Whether to drop an access unit seen at `now_ms` whose droppability is `droppable`.
    pub fn drop_it(&mut self, droppable: bool, now_ms: i64) -> bool {
        if self.window_start_ms < 0 {
            self.window_start_ms = now_ms;
        }
        if !droppable {
            self.refs += 1;
        }
        let span = now_ms - self.window_start_ms;
        if span >= 1000 {
            let ref_fps = f64::from(self.refs) * 1000.0 / span as f64;
            self.dropping = ref_fps >= self.target_fps * 1.2;
            self.window_start_ms = now_ms;
            self.refs = 0;
        }
        droppable && self.dropping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_reference_and_non_reference() {
        // P slice with nal_ref_idc 2, B slice with nal_ref_idc 0, IDR with SPS/PPS.
        assert!(!h264_droppable(&[0, 0, 0, 1, 0x41, 0x9a]));
        assert!(h264_droppable(&[0, 0, 0, 1, 0x01, 0x9e, 0, 0, 1, 0x01, 0x00]));
        assert!(!h264_droppable(&[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88]));
        // An access unit delimiter alone is not a picture.
        assert!(!h264_droppable(&[0, 0, 0, 1, 0x09, 0xf0]));
        assert!(!h264_droppable(&[]));
    }

    #[test]
    fn h265_reference_and_non_reference() {
        // TRAIL_N (0) is droppable, TRAIL_R (1) is not, VPS (32) is kept.
        assert!(h265_droppable(&[0, 0, 1, 0x00, 0x01, 0xaf]));
        assert!(!h265_droppable(&[0, 0, 1, 0x02, 0x01, 0xaf]));
        assert!(!h265_droppable(&[0, 0, 1, 0x40, 0x01, 0, 0, 1, 0x00, 0x01]));
    }

    #[test]
    fn filter_drops_only_when_references_suffice() {
        // 25 fps, one reference in four: 6.25 ref/s >= 1.2 x 5 → drop; but not for 8 fps.
        for (target, expect) in [(5.0, true), (8.0, false)] {
            let mut f = NonRefFilter::new(target);
            let mut dropped = 0;
            for i in 0..100 {
                let droppable = i % 4 != 0;
                if f.drop_it(droppable, i * 40) && i >= 50 {
                    dropped += 1;
                }
            }
            assert_eq!(dropped > 0, expect, "target {target}");
        }
    }
}
