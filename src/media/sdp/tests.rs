#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;

/// baresip 1.x calling with its default audio codecs.
const BARESIP: &str = "v=0\r\n\
o=- 3426197455 3952307217 IN IP4 10.0.0.2\r\n\
s=-\r\n\
c=IN IP4 10.0.0.2\r\n\
t=0 0\r\n\
a=tool:baresip 1.0.0\r\n\
m=audio 5004 RTP/AVP 0 8 101\r\n\
b=AS:64\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:1372398620 cname:sip:alice@example.com\r\n\
a=rtcp-rsize\r\n\
a=ptime:20\r\n";

/// linphone 5 with opus, G722, PCMU and telephone-event at two rates.
const LINPHONE: &str = "v=0\r\n\
o=alice 1234 678 IN IP4 192.168.0.23\r\n\
s=Talk\r\n\
c=IN IP4 192.168.0.23\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
a=record:off\r\n\
m=audio 7078 RTP/AVP 96 9 0 101 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp:7079\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n";

/// SIPp's uac_pcap scenario with its keywords filled in; SIPp writes LF.
const SIPP: &str = "v=0\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\n\
s=-\n\
c=IN IP4 127.0.0.1\n\
t=0 0\n\
m=audio 6000 RTP/AVP 8 101\n\
a=rtpmap:8 PCMA/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-11,16\n";

fn local() -> LocalMedia {
    LocalMedia {
        address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        rtp_port: 30_000,
        session_id: 42,
        session_version: 1,
        direction: Direction::SendRecv,
        ptime: Some(20),
        rtcp_mux: false,
    }
}

fn prefs(codecs: &[Codec]) -> Preferences {
    Preferences::new(codecs.to_vec(), true).unwrap()
}

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text).unwrap()
}

fn round_trips(sdp: &SessionDescription) {
    let printed = sdp.to_string();
    assert_eq!(&parse(&printed), sdp, "{printed}");
}

/// A sendrecv offer of PCMU with telephone-event, with a direction line.
fn offer_with_direction(direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{direction}"
    )
}

#[test]
fn baresip_offer_parses_and_is_answered() {
    let offer = parse(BARESIP);
    assert_eq!(offer.origin.session_id, 3_426_197_455);
    assert_eq!(offer.origin.session_version, 3_952_307_217);
    assert_eq!(
        offer.attributes,
        vec![Attribute::Other {
            name: "tool".into(),
            value: Some("baresip 1.0.0".into())
        }]
    );
    let audio = offer.audio().unwrap();
    assert_eq!(audio.formats, ["0", "8", "101"]);
    assert_eq!(
        audio.bandwidths,
        [Bandwidth {
            kind: "AS".into(),
            value: 64
        }]
    );
    assert_eq!(audio.fmtp(101), Some("0-15"));
    assert_eq!(audio.ptime(), Some(20));
    assert!(!offer.is_hold());

    // Default preferences put PCMA first.
    let a = answer(&offer, &local(), &Preferences::default()).unwrap();
    let n = a.negotiated.unwrap();
    assert_eq!(n.codec, Codec::Pcma);
    assert_eq!(n.payload_type, 8);
    assert_eq!(n.clock_rate, 8000);
    assert_eq!(n.dtmf_payload_type, Some(101));
    assert_eq!(n.remote_rtp, "10.0.0.2:5004".parse::<SocketAddr>().unwrap());
    assert_eq!(
        n.remote_rtcp,
        "10.0.0.2:5005".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(n.ptime, 20);
    assert_eq!(
        a.sdp.to_string(),
        "v=0\r\no=- 42 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n\
         a=sendrecv\r\n"
    );

    // Our order, not the offerer's, decides.
    let n = answer(&offer, &local(), &prefs(&[Codec::Opus, Codec::Pcmu]))
        .unwrap()
        .negotiated
        .unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
}

#[test]
fn linphone_offer_keeps_offerer_payload_types_and_matches_dtmf_rate() {
    let offer = parse(LINPHONE);
    let n = answer(&offer, &local(), &prefs(&[Codec::Opus, Codec::Pcmu]))
        .unwrap()
        .negotiated
        .unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.clock_rate),
        (Codec::Opus, 96, 48_000)
    );
    assert_eq!(n.dtmf_payload_type, Some(101), "telephone-event/48000");
    assert_eq!(
        n.remote_rtcp,
        "192.168.0.23:7079".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(n.ptime, 20, "no a=ptime from the peer: ours");

    let a = answer(&offer, &local(), &prefs(&[Codec::Pcma, Codec::Pcmu])).unwrap();
    let n = a.negotiated.unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
    assert_eq!(n.dtmf_payload_type, Some(100), "telephone-event/8000");
    let m = a.sdp.audio().unwrap();
    assert_eq!(m.formats, ["0", "100"]);

    let only_opus = Preferences::new(vec![Codec::Opus], false).unwrap();
    let n = answer(&offer, &local(), &only_opus)
        .unwrap()
        .negotiated
        .unwrap();
    assert_eq!(n.dtmf_payload_type, None, "telephone-event not wanted");
}

#[test]
fn sipp_offer_with_bare_lf_is_answered() {
    let offer = parse(SIPP);
    assert_eq!(offer, parse(&SIPP.replace('\n', "\r\n")));
    let n = answer(&offer, &local(), &Preferences::default())
        .unwrap()
        .negotiated
        .unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.dtmf_payload_type),
        (Codec::Pcma, 8, Some(101))
    );
    assert_eq!(
        n.remote_rtp,
        "127.0.0.1:6000".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn samples_round_trip() {
    for sample in [BARESIP, LINPHONE, SIPP] {
        round_trips(&parse(sample));
    }
    // Canonical CRLF input prints back byte for byte.
    assert_eq!(parse(BARESIP).to_string(), BARESIP);
    assert_eq!(parse(LINPHONE).to_string(), LINPHONE);
    assert_eq!(parse(SIPP).to_string(), SIPP.replace('\n', "\r\n"));
}

#[test]
fn every_line_type_round_trips() {
    let text = "v=0\r\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n\
        s=SDP Seminar\r\ni=A Seminar on the session description protocol\r\n\
        u=http://www.example.com/seminars/sdp.pdf\r\ne=j.doe@example.com (Jane Doe)\r\n\
        p=+1 617 555-6011\r\nc=IN IP4 10.47.16.5\r\nb=CT:128\r\n\
        t=2873397496 2873404696\r\nr=604800 3600 0 90000\r\nt=0 0\r\n\
        z=2882844526 -1h 2898848070 0\r\nk=prompt\r\na=recvonly\r\n\
        m=audio 49170 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 10.47.16.6\r\nb=AS:64\r\nk=prompt\r\n\
        a=maxptime:40\r\na=rtcp:53020 IN IP6 2001:db8::9\r\na=rtcp-mux\r\n\
        m=video 51372/2 RTP/AVP 99\r\na=rtpmap:99 h263-1998/90000\r\n\
        m=application 9 UDP/BFCP *\r\n";
    let sdp = parse(text);
    assert_eq!(sdp.to_string(), text);
    assert_eq!(sdp.timings.len(), 2);
    assert_eq!(sdp.timings[0].repeats, ["604800 3600 0 90000"]);
    assert_eq!(sdp.media[1].port_count, Some(2));
    assert_eq!(sdp.direction_attr(), Some(Direction::RecvOnly));
    assert_eq!(
        sdp.media[0].rtcp(),
        Some(&RtcpAttr {
            port: 53020,
            address: Some(Address::Ip("2001:db8::9".parse().unwrap()))
        })
    );
    assert!(sdp.media[0].rtcp_mux());
    round_trips(&sdp);
}

#[test]
fn offers_round_trip_and_parse_back() {
    let offer = make_offer(&local(), &Preferences::default());
    round_trips(&offer);
    assert_eq!(
        offer.to_string(),
        "v=0\r\no=- 42 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 8 0 96 101 100\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:96 opus/48000/2\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=rtpmap:100 telephone-event/48000\r\na=fmtp:100 0-16\r\na=ptime:20\r\n\
         a=sendrecv\r\n"
    );
    let no_dtmf = Preferences::new(vec![Codec::Pcmu], false).unwrap();
    assert_eq!(
        make_offer(&local(), &no_dtmf).audio().unwrap().formats,
        ["0"]
    );
}

#[test]
fn preferences_reject_empty_and_duplicates() {
    assert_eq!(Preferences::new(vec![], true), Err(PreferencesError::Empty));
    assert_eq!(
        Preferences::new(vec![Codec::Pcmu, Codec::Pcma, Codec::Pcmu], true),
        Err(PreferencesError::Duplicate(Codec::Pcmu))
    );
}

#[test]
fn answer_direction_follows_rfc3264_6_1() {
    use Direction::*;
    let all = [SendRecv, SendOnly, RecvOnly, Inactive];
    for offered in all {
        for wanted in all {
            let offer = parse(&offer_with_direction(&format!(
                "a={}\r\n",
                offered.as_str()
            )));
            let local = LocalMedia {
                direction: wanted,
                ..local()
            };
            let a = answer(&offer, &local, &Preferences::default()).unwrap();
            let got = a.negotiated.unwrap().direction;
            let expected = match (offered, wanted) {
                (Inactive, _) | (_, Inactive) => Inactive,
                (SendOnly, SendOnly) | (RecvOnly, RecvOnly) => Inactive,
                (SendOnly, _) => RecvOnly,
                (RecvOnly, _) => SendOnly,
                (SendRecv, w) => w,
            };
            assert_eq!(got, expected, "offer {offered:?}, we want {wanted:?}");
            assert_eq!(a.sdp.direction_of(a.sdp.audio().unwrap()), expected);
            // And the offerer, reading our answer, sees the mirror image.
            let ours = make_offer(
                &LocalMedia {
                    direction: offered,
                    ..super::tests::local()
                },
                &Preferences::default(),
            );
            let reply = answer(&ours, &local, &Preferences::default()).unwrap();
            let n = accept_answer(&ours, &reply.sdp).unwrap();
            assert_eq!(
                n.direction,
                expected.reversed(),
                "UAC view of {offered:?}/{wanted:?}"
            );
        }
    }
    // No direction attribute means sendrecv; a session-level one applies.
    let offer = parse(&offer_with_direction(""));
    assert_eq!(offer.direction_of(offer.audio().unwrap()), SendRecv);
    let session_level = offer_with_direction("").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    let offer = parse(&session_level);
    let n = answer(&offer, &local(), &Preferences::default())
        .unwrap()
        .negotiated
        .unwrap();
    assert_eq!(n.direction, RecvOnly);
}

#[test]
fn no_common_codec_is_a_488_with_a_warning() {
    let offer = parse(&LINPHONE.replace(
        "m=audio 7078 RTP/AVP 96 9 0 101 100",
        "m=audio 7078 RTP/AVP 9 101 100",
    ));
    let e = answer(&offer, &local(), &Preferences::default()).unwrap_err();
    assert_eq!(e, NegotiationError::NoCommonCodec);
    assert_eq!(
        e.warning_text("switchboard"),
        "305 switchboard \"Incompatible media format\""
    );
    // telephone-event alone is not a codec.
    let offer = parse(&offer_with_direction("").replace("RTP/AVP 0 101", "RTP/AVP 101"));
    assert_eq!(
        answer(&offer, &local(), &Preferences::default()),
        Err(NegotiationError::NoCommonCodec)
    );
    // A dynamic number mapped to a codec we know is that codec.
    let offer = parse(
        &offer_with_direction("")
            .replace("RTP/AVP 0 101", "RTP/AVP 120")
            .replace(
                "a=rtpmap:101 telephone-event/8000",
                "a=rtpmap:120 pcmu/8000",
            ),
    );
    let n = answer(&offer, &local(), &Preferences::default())
        .unwrap()
        .negotiated
        .unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 120));
}

#[test]
fn other_refusals_have_their_warnings() {
    let video_only = parse(
        "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
         m=video 4000 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n",
    );
    let e = answer(&video_only, &local(), &Preferences::default()).unwrap_err();
    assert_eq!(e, NegotiationError::NoAudio);
    assert_eq!(e.warning().0, 304);

    let srtp = parse(&SIPP.replace("RTP/AVP", "RTP/SAVP"));
    let e = answer(&srtp, &local(), &Preferences::default()).unwrap_err();
    assert_eq!(e, NegotiationError::UnsupportedTransport("RTP/SAVP".into()));
    assert_eq!(e.warning().0, 302);

    let host = parse(&SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 media.example.com"));
    assert_eq!(
        answer(&host, &local(), &Preferences::default()),
        Err(NegotiationError::HostnameAddress)
    );
}

#[test]
fn port_zero_streams_are_kept_at_port_zero() {
    // The offerer disabled its audio: answered at port 0, no stream.
    let offer = parse(&SIPP.replace("m=audio 6000", "m=audio 0"));
    let a = answer(&offer, &local(), &Preferences::default()).unwrap();
    assert_eq!(a.negotiated, None);
    let m = a.sdp.audio().unwrap();
    assert_eq!(
        (m.port, m.formats.clone()),
        (0, vec!["8".into(), "101".into()])
    );
    assert!(!offer.is_hold(), "a disabled stream is not a hold");

    // Audio plus video: the video is refused, the section count kept.
    let text = format!("{BARESIP}m=video 5006 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n");
    let offer = parse(&text);
    let a = answer(&offer, &local(), &Preferences::default()).unwrap();
    assert_eq!(a.sdp.media.len(), 2);
    assert_eq!(a.sdp.media[1].port, 0);
    assert_eq!(a.sdp.media[1].formats, ["99"]);
    assert!(a.negotiated.is_some());
    round_trips(&a.sdp);

    // A second audio stream is refused; we anchor one.
    let text = format!("{SIPP}m=audio 6002 RTP/AVP 0\n");
    let a = answer(&parse(&text), &local(), &Preferences::default()).unwrap();
    assert_eq!(
        a.sdp.media.iter().map(|m| m.port).collect::<Vec<_>>(),
        [30_000, 0]
    );

    // UAC side: an answer that refuses our audio.
    let ours = make_offer(&local(), &Preferences::default());
    let mut refused = answer(&ours, &local(), &Preferences::default())
        .unwrap()
        .sdp;
    refused.media[0].port = 0;
    assert_eq!(
        accept_answer(&ours, &refused),
        Err(NegotiationError::AudioRejected)
    );
    refused.media.clear();
    assert_eq!(
        accept_answer(&ours, &refused),
        Err(NegotiationError::MediaCountMismatch {
            offer: 1,
            answer: 0
        })
    );
}

#[test]
fn hold_is_detected_in_all_three_forms() {
    assert!(parse(&offer_with_direction("a=sendonly\r\n")).is_hold());
    assert!(parse(&offer_with_direction("a=inactive\r\n")).is_hold());
    assert!(!parse(&offer_with_direction("a=recvonly\r\n")).is_hold());
    assert!(!parse(&offer_with_direction("a=sendrecv\r\n")).is_hold());
    // RFC 2543 hold: c=0.0.0.0 with no direction attribute.
    let legacy =
        parse(&offer_with_direction("").replace("c=IN IP4 203.0.113.5", "c=IN IP4 0.0.0.0"));
    assert!(legacy.is_hold());
    // We must not send to 0.0.0.0: the answer only receives.
    let n = answer(&legacy, &local(), &Preferences::default())
        .unwrap()
        .negotiated
        .unwrap();
    assert_eq!(n.direction, Direction::RecvOnly);
}

#[test]
fn reoffers_bump_the_version_and_keep_payload_types() {
    let first = make_offer(&local(), &Preferences::default());
    let hold = LocalMedia {
        direction: Direction::SendOnly,
        ..local()
    };
    let reoffer = make_reoffer(&first, &hold, &Preferences::default());
    assert_eq!(reoffer.origin.session_id, first.origin.session_id);
    assert_eq!(
        reoffer.origin.session_version,
        first.origin.session_version + 1
    );
    assert!(reoffer.is_hold());
    let resume = make_reoffer(&reoffer, &local(), &Preferences::default());
    assert_eq!(resume.origin.session_version, 3);
    assert!(!resume.is_hold());

    // Codec change: opus first now; numbers do not move.
    let change = make_reoffer(&resume, &local(), &prefs(&[Codec::Opus, Codec::Pcma]));
    assert_eq!(change.audio().unwrap().formats, ["96", "8", "100", "101"]);

    // After answering linphone we re-offer with the numbers it chose: its
    // 101 is telephone-event/48000, so our usual 101 for /8000 moves to the
    // first free dynamic number.
    let a = answer(&parse(LINPHONE), &local(), &prefs(&[Codec::Opus])).unwrap();
    let re = make_reoffer(&a.sdp, &local(), &prefs(&[Codec::Opus, Codec::Pcmu]));
    let m = re.audio().unwrap();
    assert_eq!(m.formats, ["96", "0", "101", "97"]);
    assert_eq!(m.rtpmap(101).unwrap().clock_rate, 48_000);
    assert_eq!(m.rtpmap(97).unwrap().clock_rate, 8000);

    // The peer re-offers with another codec: the answer follows.
    let reoffer = parse(&BARESIP.replace("RTP/AVP 0 8 101", "RTP/AVP 0 101"));
    let n = answer(&reoffer, &local(), &Preferences::default())
        .unwrap()
        .negotiated
        .unwrap();
    assert_eq!(n.codec, Codec::Pcmu);
}

#[test]
fn uac_takes_the_answer_payload_types() {
    let ours = make_offer(
        &LocalMedia {
            rtcp_mux: true,
            ..local()
        },
        &prefs(&[Codec::Opus, Codec::Pcmu]),
    );
    let reply = "v=0\r\no=- 7 7 IN IP4 192.0.2.44\r\ns=-\r\nc=IN IP4 192.0.2.44\r\nt=0 0\r\n\
        m=audio 20000 RTP/AVP 111 110\r\na=rtpmap:111 opus/48000/2\r\n\
        a=rtpmap:110 telephone-event/48000\r\na=ptime:40\r\na=rtcp-mux\r\n";
    let n = accept_answer(&ours, &parse(reply)).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.dtmf_payload_type),
        (Codec::Opus, 111, Some(110))
    );
    assert!(n.rtcp_mux);
    assert_eq!(n.remote_rtcp, n.remote_rtp);
    assert_eq!(n.ptime, 40);

    // An answer with a codec we never offered is no agreement.
    let g722 = reply
        .replace("RTP/AVP 111 110", "RTP/AVP 9")
        .replace("a=rtpmap:111 opus/48000/2\r\n", "");
    assert_eq!(
        accept_answer(&ours, &parse(&g722)),
        Err(NegotiationError::NoCommonCodec)
    );
}

#[test]
fn rtcp_mux_needs_both_sides() {
    let muxing = LocalMedia {
        rtcp_mux: true,
        ..local()
    };
    let offer = parse(&format!("{SIPP}a=rtcp-mux\n"));
    let a = answer(&offer, &muxing, &Preferences::default()).unwrap();
    assert!(a.sdp.audio().unwrap().rtcp_mux());
    let n = a.negotiated.unwrap();
    assert_eq!(n.remote_rtcp, n.remote_rtp);
    let a = answer(&offer, &local(), &Preferences::default()).unwrap();
    assert!(!a.sdp.audio().unwrap().rtcp_mux());
    assert_eq!(a.negotiated.unwrap().remote_rtcp.port(), 6001);
}

#[test]
fn ipv6_media() {
    let offer = parse(
        "v=0\r\no=- 5 5 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0\r\n",
    );
    round_trips(&offer);
    let v6 = LocalMedia {
        address: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77)),
        ..local()
    };
    let a = answer(&offer, &v6, &Preferences::default()).unwrap();
    assert_eq!(
        a.negotiated.unwrap().remote_rtp,
        "[2001:db8::1]:4000".parse::<SocketAddr>().unwrap()
    );
    assert!(a.sdp.to_string().contains("c=IN IP6 2001:db8::77\r\n"));
    round_trips(&a.sdp);
    assert_eq!(
        answer(&offer, &local(), &Preferences::default()),
        Err(NegotiationError::AddressFamilyMismatch)
    );
    let e = answer(&offer, &local(), &Preferences::default()).unwrap_err();
    assert_eq!(e.warning().0, 301);
}

#[test]
fn malformed_input_reports_the_line() {
    use ParseErrorKind::*;
    let good = offer_with_direction("a=sendrecv\r\n");
    let cases: Vec<(String, usize, ParseErrorKind)> = vec![
        (String::new(), 1, Missing('v')),
        ("v=1\r\n".into(), 1, BadVersion),
        (good.replace("o=- 1 1", "o=- x 1"), 2, BadOrigin),
        (
            good.replace("o=- 1 1 IN IP4 203.0.113.5", "o=- 1 1 IN"),
            2,
            BadOrigin,
        ),
        (good.replace("s=-\r\n", ""), 3, Missing('s')),
        (
            good.replace("c=IN IP4 203.0.113.5", "c=IN IP4 203.0.113.300"),
            4,
            BadAddress,
        ),
        (
            good.replace("c=IN IP4 203.0.113.5", "c=IN IP6 203.0.113.5"),
            4,
            BadAddress,
        ),
        (
            good.replace("c=IN IP4 203.0.113.5", "c=ATM NSAP 47.0091"),
            4,
            BadNetworkType,
        ),
        (
            good.replace("c=IN IP4 203.0.113.5", "c=IN IP4 224.2.1.1/127"),
            4,
            Multicast,
        ),
        (good.replace("t=0 0\r\n", ""), 5, Missing('t')),
        (good.replace("t=0 0", "t=0"), 5, BadTiming),
        (good.replace("m=audio 4000", "m=audio 70000"), 6, BadMedia),
        (good.replace("RTP/AVP 0 101", "RTP/AVP"), 6, BadMedia),
        (
            good.replace("RTP/AVP 0 101", "RTP/AVP 0 128"),
            6,
            BadPayloadType,
        ),
        (
            good.replace("telephone-event/8000", "telephone-event"),
            7,
            BadAttribute("rtpmap"),
        ),
        (
            good.replace("a=sendrecv", "a=ptime:x"),
            8,
            BadAttribute("ptime"),
        ),
        (
            good.replace("a=sendrecv", "a=sendrecv:1"),
            8,
            BadAttribute("sendrecv"),
        ),
        (
            good.replace("a=sendrecv", "a=fmtp:101"),
            8,
            BadAttribute("fmtp"),
        ),
        (
            good.replace("a=sendrecv", "a=rtcp:9 IN IP4"),
            8,
            BadAttribute("rtcp"),
        ),
        (good.replace("a=sendrecv", "a=:x"), 8, BadAttributeName),
        (good.replace("a=sendrecv", "x=1"), 8, UnknownType('x')),
        (good.replace("a=sendrecv", "sendrecv"), 8, NotTypeValue),
        (
            good.replace("a=sendrecv", "c=IN IP4 1.2.3.4"),
            8,
            OutOfOrder('c'),
        ),
        (good.replace("a=sendrecv", "s=again"), 8, OutOfOrder('s')),
        (
            good.replace("t=0 0\r\n", "t=0 0\r\ns=-\r\n"),
            6,
            OutOfOrder('s'),
        ),
        (
            good.replace("s=-\r\n", "s=-\r\nc=IN IP4 1.1.1.1\r\n"),
            5,
            OutOfOrder('c'),
        ),
        (good.replace("t=0 0\r\n", "t=0 0\r\n\r\n"), 6, EmptyLine),
        (
            good.replace("c=IN IP4 203.0.113.5\r\n", ""),
            5,
            NoConnection,
        ),
        (
            good.replace("b=", "").replace("t=0 0", "r=1 2 3"),
            5,
            OutOfOrder('r'),
        ),
    ];
    for (text, line, kind) in cases {
        let e = SessionDescription::parse(&text).unwrap_err();
        assert_eq!(e, ParseError { line, kind }, "{text}");
    }
    let e = SessionDescription::parse_bytes(b"v=0\r\no=- 1 1 IN IP4 \xff\r\n").unwrap_err();
    assert_eq!((e.line, e.kind), (2, NotUtf8));
    assert_eq!(
        ParseError {
            line: 4,
            kind: Multicast
        }
        .to_string(),
        "SDP line 4: multicast connection addresses are not supported"
    );
    // Trailing blank lines are tolerated, and port-0 media need no c=.
    let text = good
        .replace("c=IN IP4 203.0.113.5\r\n", "")
        .replace("m=audio 4000", "m=audio 0");
    assert!(SessionDescription::parse(&format!("{text}\r\n\r\n")).is_ok());
}

/// Lines in SDP's alphabet, to reach deeper than random text.
fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_owned()),
        Just("o=- 1 2 IN IP4 10.0.0.1".to_owned()),
        Just("s=-".to_owned()),
        Just("t=0 0".to_owned()),
        Just("c=IN IP4 0.0.0.0".to_owned()),
        Just("c=IN IP6 ::1".to_owned()),
        Just("a=sendonly".to_owned()),
        Just("a=rtcp-mux".to_owned()),
        "m=(audio|video) [0-9]{1,5} RTP/(AVP|SAVP) [0-9]{1,3}( [0-9]{1,3}){0,3}",
        "a=rtpmap:[0-9]{1,3} (PCMU|PCMA|opus|telephone-event|G722)/[0-9]{4,5}(/[0-9])?",
        "a=(ptime|maxptime|fmtp|rtcp):[ -~]{0,12}",
        "[a-z]=[ -~]{0,20}",
    ]
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz_parse(&data);
    }

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        fuzz_parse(text.as_bytes());
    }

    #[test]
    fn sdp_shaped_text_round_trips(
        lines in proptest::collection::vec(sdp_line(), 0..16),
        crlf in any::<bool>(),
    ) {
        let mut text = String::from("v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n");
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        // fuzz_parse asserts the print/parse round trip on what parses.
        fuzz_parse(text.as_bytes());
    }
}
