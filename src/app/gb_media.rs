//! The bridge between ingest (threads, no SIP) and the GB/T 28181 server (async): a
//! `gb28181://` camera's pipeline asks for its live video through `GbMedia`, which runs the
//! server's INVITE on the runtime and hands back the answer; dropping the call sends BYE.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::gb28181::media::StreamTransport;
use crate::gb28181::{Call, GbServer, TcpSetup};
use crate::ingest::gb::{GbMedia, MediaCall, MediaOffer, MediaSession, MediaTransport};

pub struct Bridge {
    server: Arc<GbServer>,
    rt: tokio::runtime::Handle,
}

impl Bridge {
    pub fn new(server: Arc<GbServer>, rt: tokio::runtime::Handle) -> Self {
        Self { server, rt }
    }
}

impl GbMedia for Bridge {
    fn transport(&self, device: &str, tcp: bool) -> MediaTransport {
        match (tcp, self.server.tcp_setup(device)) {
            (false, _) => MediaTransport::Udp,
            (true, TcpSetup::Passive) => MediaTransport::TcpPassive,
            (true, TcpSetup::Active) => MediaTransport::TcpActive,
        }
    }

    fn bind_ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }

    fn ports(&self) -> Option<(u16, u16)> {
        self.server.media_ports()
    }

    fn invite(&self, offer: &MediaOffer) -> Result<MediaSession, String> {
        let transport = match offer.transport {
            MediaTransport::Udp => StreamTransport::Udp,
            MediaTransport::TcpPassive => StreamTransport::Tcp(TcpSetup::Passive),
            MediaTransport::TcpActive => StreamTransport::Tcp(TcpSetup::Active),
        };
        let call = self.rt.block_on(self.server.invite(&offer.device, &offer.channel, transport, offer.port))?;
        Ok(MediaSession {
            remote: Some(call.answer.remote),
            ssrc: call.answer.ssrc.or(Some(call.offered_ssrc)),
            encoding: call.answer.encoding.clone(),
            call: Box::new(Guard { call: Some(call), rt: self.rt.clone() }),
        })
    }
}

/// Ends the call when the pipeline lets go of it.
struct Guard {
    call: Option<Call>,
    rt: tokio::runtime::Handle,
}

impl MediaCall for Guard {
    fn ended(&self) -> Option<String> {
        self.call.as_ref().and_then(Call::ended)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            self.rt.spawn(call.hang_up());
        }
    }
}
