//! Decoding one keyframe on its own: `appsrc → parse → decoder → [scale] → convert → appsink`,
//! built for the keyframe and torn down after it. The decoder is drained by end-of-stream, so a
//! lone keyframe comes out even from streams with B-frames (whose decoders otherwise hold pictures
//! back for reordering). Used by the `health` profile once per sampling interval.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::Frame;
use super::rtsp::VideoCodec;
use super::spec::PixelFormat;

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|e| format!("element {factory}: {e}"))
}

/// Decodes `au` (Annex-B, parameter sets first) to a frame of `size` and `format`; also returns
/// the picture's own size.
pub(crate) fn decode(
    camera: &Arc<str>,
    codec: VideoCodec,
    au: &[u8],
    format: PixelFormat,
    size: (usize, usize),
    now_ms: i64,
) -> Result<(Frame, (u32, u32)), String> {
    let (media, parse, dec) = match codec {
        VideoCodec::H264 => ("video/x-h264", "h264parse", "avdec_h264"),
        VideoCodec::H265 => ("video/x-h265", "h265parse", "avdec_h265"),
    };
    let pipeline = gst::Pipeline::new();
    let caps = gst::Caps::builder(media).field("stream-format", "byte-stream").field("alignment", "au").build();
    let src = gst_app::AppSrc::builder().caps(&caps).format(gst::Format::Time).build();
    let parse = make(parse)?;
    let dec = gst::ElementFactory::make(dec)
        .property("max-threads", 1i32)
        .build()
        .map_err(|e| format!("element {dec}: {e}"))?;
    let grey = format == PixelFormat::Gray8;
    let mut out_caps = gst_video::VideoCapsBuilder::new().format(if grey {
        gst_video::VideoFormat::I420
    } else {
        gst_video::VideoFormat::Rgb
    });
    if !grey {
        out_caps = out_caps.width(size.0 as i32).height(size.1 as i32);
    }
    let sink = gst_app::AppSink::builder().caps(&out_caps.build()).sync(false).build();
    let mut chain: Vec<gst::Element> = vec![src.clone().upcast(), parse.clone(), dec];
    if !grey {
        chain.push(make("videoscale")?);
    }
    chain.push(make("videoconvert")?);
    chain.push(sink.clone().upcast());
    pipeline.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
    let result = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|e| format!("decoder pipeline: {e}"))?;
        let mut buffer = gst::Buffer::from_slice(au.to_vec());
        buffer.get_mut().ok_or("buffer")?.set_pts(gst::ClockTime::ZERO);
        src.push_buffer(buffer).map_err(|e| format!("pushing the keyframe: {e:?}"))?;
        let _ = src.end_of_stream();
        let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(5));
        let Some(sample) = sample else {
            let bus_error = pipeline.bus().and_then(|b| {
                b.iter().find_map(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(e.error().to_string()),
                    _ => None,
                })
            });
            return Err(match bus_error {
                Some(e) => format!("the keyframe did not decode: {e}"),
                None => "the keyframe did not decode (no picture came out)".to_string(),
            });
        };
        let native = parse
            .static_pad("src")
            .and_then(|p| p.current_caps())
            .and_then(|c| {
                let s = c.structure(0)?;
                Some((s.get::<i32>("width").ok()? as u32, s.get::<i32>("height").ok()? as u32))
            })
            .unwrap_or((0, 0));
        let frame = super::pipeline::to_frame(camera, format, size, &sample, now_ms)?;
        Ok((frame, native))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}
