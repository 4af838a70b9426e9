//! The Site-to-Site VPN tunnel activity messages AWS documents (IKEv1 and IKEv2 errors,
//! IKEv2 negotiation), each with AWS's explanation and a concrete remediation, and the
//! recognition of a `details` text with its variable parts (SPIs, addresses, message
//! ids, retry counts). A message outside the catalogue is kept as it is, never dropped.

use std::sync::LazyLock;

use regex::Regex;

/// The IKE versions a message is documented for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IkeVersions {
    /// IKEv1 only.
    V1,
    /// IKEv2 only.
    V2,
    /// Both.
    Both,
}

/// Whether a message reports a failure or a step of a normal negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Something went wrong; the tunnel may be down.
    Error,
    /// A normal negotiation step.
    Negotiation,
}

/// A documented tunnel activity message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelEvent {
    /// `Peer is not responsive - Declaring peer dead` (IKEv1 DPD timeout).
    PeerNotResponsive,
    /// `AWS tunnel payload decryption was unsuccessful due to invalid Pre-shared Key` (IKEv1).
    PayloadDecryptionFailed,
    /// `No Proposal Match Found by AWS`.
    NoProposalMatchByAws,
    /// `No Proposal Match Found. Notifying with "No proposal chosen"`.
    NoProposalChosen,
    /// `AWS tunnel received DELETE for Phase 2 SA with SPI: {spi}`.
    DeletePhase2Sa,
    /// `AWS tunnel received DELETE for IKE_SA from CGW`.
    DeleteIkeSa,
    /// `AWS tunnel DPD timed out after {retry_count} retransmits` (IKEv2).
    DpdTimedOut,
    /// `AWS tunnel detected a (CHILD_REKEY) collision as CHILD_DELETE`.
    ChildRekeyCollision,
    /// `AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision`.
    RedundantChildSaDeleted,
    /// `AWS tunnel Phase 2 was unable to establish while keeping Phase 1`.
    Phase2FailedKeepingPhase1,
    /// `AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder`.
    TrafficSelectorUnacceptable,
    /// `AWS tunnel is sending AUTHENTICATION_FAILED as the response`.
    AuthenticationFailed,
    /// `AWS tunnel detected a pre-shared key mismatch with cgw: {cgw}`.
    PreSharedKeyMismatch,
    /// `AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: {cgw}`.
    Phase1Timeout,
    /// `AWS tunnel processed request (id={id}) for CREATE_CHILD_SA`.
    CreateChildSaRequestReceived,
    /// `AWS tunnel is sending response (id={id}) for CREATE_CHILD_SA`.
    CreateChildSaResponseSent,
    /// `AWS tunnel is sending request (id={id}) for CREATE_CHILD_SA`.
    CreateChildSaRequestSent,
    /// `AWS tunnel processed response (id={id}) for CREATE_CHILD_SA`.
    CreateChildSaResponseReceived,
}

/// What AWS documents about a message, and what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSpec {
    /// The event.
    pub event: TunnelEvent,
    /// The message as AWS writes it, with `{name}` for each variable part.
    pub template: &'static str,
    /// The IKE versions AWS lists it for.
    pub ike: IkeVersions,
    /// Error or negotiation step.
    pub severity: Severity,
    /// AWS's explanation (verbatim).
    pub explanation: &'static str,
    /// What to check or change.
    pub remediation: &'static str,
}

use IkeVersions::{Both, V1, V2};
use Severity::{Error, Negotiation};
use TunnelEvent::*;

/// The catalogue, in AWS's table order (IKEv1 errors, IKEv2 errors, IKEv2 negotiation).
pub const CATALOGUE: &[MessageSpec] = &[
    MessageSpec {
        event: PeerNotResponsive,
        template: "Peer is not responsive - Declaring peer dead",
        ike: V1,
        severity: Error,
        explanation: "Peer has not responded to DPD Messages, enforcing DPD time-out action.",
        remediation: "Check that the customer gateway is up and reaches the tunnel outside IP on UDP 500/4500 (and ESP or NAT-T); make the customer gateway answer DPD (R_U_THERE) or send traffic, and align its DPD timeout with AWS's (30 s by default).",
    },
    MessageSpec {
        event: PayloadDecryptionFailed,
        template: "AWS tunnel payload decryption was unsuccessful due to invalid Pre-shared Key",
        ike: V1,
        severity: Error,
        explanation: "Same Pre-Shared key needs to be configured on both IKE Peers.",
        remediation: "Set the customer gateway's pre-shared key for this tunnel to the tunnel's key in the VPN configuration (each tunnel has its own), with no extra whitespace.",
    },
    MessageSpec {
        event: NoProposalMatchByAws,
        template: "No Proposal Match Found by AWS",
        ike: Both,
        severity: Error,
        explanation: "Proposed Attributes for Phase 1 or Phase 2 (Encryption, Hashing and DH Group) are not supported by AWS VPN Endpoint— for example, `3DES`.",
        remediation: "Propose algorithms the tunnel allows: AES128/AES256 (or GCM), SHA1/SHA2-256/384/512, DH groups 2, 14-24 (as set in the tunnel options); remove 3DES, MD5 and DH group 1/5.",
    },
    MessageSpec {
        event: NoProposalChosen,
        template: "No Proposal Match Found. Notifying with \"No proposal chosen\"",
        ike: Both,
        severity: Error,
        explanation: "No Proposal Chosen error message is exchanged between Peers to inform that correct Proposals/Policies must be configured for phase 2 on IKE Peers.",
        remediation: "Make the customer gateway's phase 2 (ESP) proposal match the tunnel's phase 2 options: encryption, integrity and, with PFS, the DH group.",
    },
    MessageSpec {
        event: DeletePhase2Sa,
        template: "AWS tunnel received DELETE for Phase 2 SA with SPI: {spi}",
        ike: Both,
        severity: Error,
        explanation: "CGW has sent the Delete_SA message for Phase 2.",
        remediation: "The customer gateway closed this child SA: check its logs for why (idle timeout, rekey, configuration change); if the tunnel stays down, set the customer gateway to keep the SA up (or use AWS startup action \"start\").",
    },
    MessageSpec {
        event: DeleteIkeSa,
        template: "AWS tunnel received DELETE for IKE_SA from CGW",
        ike: Both,
        severity: Error,
        explanation: "CGW has sent the Delete_SA message for Phase 1.",
        remediation: "The customer gateway tore the IKE SA down: check its logs (restart, configuration reload, lifetime expiry) and that it re-initiates; AWS's startup action \"start\" makes AWS re-initiate.",
    },
    MessageSpec {
        event: DpdTimedOut,
        template: "AWS tunnel DPD timed out after {retry_count} retransmits",
        ike: V2,
        severity: Error,
        explanation: "Peer has not responded to DPD Messages, enforcing DPD time-out action.",
        remediation: "Check that the customer gateway is up and reachable on UDP 500/4500 from the tunnel outside IP, that it answers INFORMATIONAL (DPD) requests, and that no firewall or NAT drops idle UDP state.",
    },
    MessageSpec {
        event: ChildRekeyCollision,
        template: "AWS tunnel detected a (CHILD_REKEY) collision as CHILD_DELETE",
        ike: V2,
        severity: Error,
        explanation: "CGW has sent the Delete_SA message for the Active SA, which is being rekeyed.",
        remediation: "Both sides rekeyed at once; usually harmless. If it repeats, make the customer gateway's phase 2 lifetime differ from AWS's (3600 s) so one side rekeys first.",
    },
    MessageSpec {
        event: RedundantChildSaDeleted,
        template: "AWS tunnel (CHILD_SA) redundant SA is being deleted due to detected collision",
        ike: V2,
        severity: Error,
        explanation: "Due to Collision, If redundant SAs are generated, Peers will close redundant SA after matching the nonce values as per RFC.",
        remediation: "Expected after a rekey collision; if it repeats, stagger the lifetimes (or the rekey margins) of the customer gateway and AWS.",
    },
    MessageSpec {
        event: Phase2FailedKeepingPhase1,
        template: "AWS tunnel Phase 2 was unable to establish while keeping Phase 1",
        ike: V2,
        severity: Error,
        explanation: "Peer was unable to establish CHILD_SA due to negotiation error — for example, incorrect proposal.",
        remediation: "Phase 1 is up but the child SA failed: align the phase 2 proposal (encryption, integrity, PFS group) and the traffic selectors with the tunnel options.",
    },
    MessageSpec {
        event: TrafficSelectorUnacceptable,
        template: "AWS: Traffic Selector: TS_UNACCEPTABLE: received from responder",
        ike: V2,
        severity: Error,
        explanation: "Peer has proposed Incorrect Traffic Selectors/Encryption Domain. Peers should be configured with identical and correct CIDRs.",
        remediation: "Make the customer gateway's local/remote networks match the VPN connection's local and remote IPv4 network CIDRs (0.0.0.0/0 on both by default), or use a route-based (VTI) configuration.",
    },
    MessageSpec {
        event: AuthenticationFailed,
        template: "AWS tunnel is sending AUTHENTICATION_FAILED as the response",
        ike: V2,
        severity: Error,
        explanation: "Peer is unable to Authenticate the Peer by verifying IKE_AUTH message's contents",
        remediation: "Check the authentication settings: the pre-shared key (or certificate) and the IKE identities (the customer gateway's IP or certificate ID) must match the VPN configuration.",
    },
    MessageSpec {
        event: PreSharedKeyMismatch,
        template: "AWS tunnel detected a pre-shared key mismatch with cgw: {cgw}",
        ike: V2,
        severity: Error,
        explanation: "Same Pre-Shared key needs to be configured on both IKE Peers.",
        remediation: "Set the customer gateway's pre-shared key for this tunnel to the tunnel's key in the VPN configuration (each tunnel has its own), with no extra whitespace.",
    },
    MessageSpec {
        event: Phase1Timeout,
        template: "AWS tunnel Timeout: deleting un-established Phase 1 IKE_SA with cgw: {cgw}",
        ike: V2,
        severity: Error,
        explanation: "Deleting the half-opened IKE_SA as peer has not proceeded with negotiations",
        remediation: "The customer gateway started IKE but did not finish: check that UDP 4500 passes both ways (NAT-T), that IKE_AUTH fragments are not dropped (enable IKE fragmentation), and the customer gateway's logs.",
    },
    MessageSpec {
        event: CreateChildSaRequestReceived,
        template: "AWS tunnel processed request (id={id}) for CREATE_CHILD_SA",
        ike: V2,
        severity: Negotiation,
        explanation: "AWS has received the CREATE_CHILD_SA request from CGW.",
        remediation: "Nothing to do: a rekey or new child SA initiated by the customer gateway.",
    },
    MessageSpec {
        event: CreateChildSaResponseSent,
        template: "AWS tunnel is sending response (id={id}) for CREATE_CHILD_SA",
        ike: V2,
        severity: Negotiation,
        explanation: "AWS is sending CREATE_CHILD_SA response to CGW.",
        remediation: "Nothing to do: AWS answered the customer gateway's CREATE_CHILD_SA.",
    },
    MessageSpec {
        event: CreateChildSaRequestSent,
        template: "AWS tunnel is sending request (id={id}) for CREATE_CHILD_SA",
        ike: V2,
        severity: Negotiation,
        explanation: "AWS is sending CREATE_CHILD_SA request to CGW.",
        remediation: "Nothing to do: AWS is rekeying or creating a child SA.",
    },
    MessageSpec {
        event: CreateChildSaResponseReceived,
        template: "AWS tunnel processed response (id={id}) for CREATE_CHILD_SA",
        ike: V2,
        severity: Negotiation,
        explanation: "AWS has received CREATE_CHILD_SA response form CGW.",
        remediation: "Nothing to do: the customer gateway answered AWS's CREATE_CHILD_SA.",
    },
];

impl TunnelEvent {
    /// What AWS documents about this event.
    pub fn spec(self) -> &'static MessageSpec {
        CATALOGUE
            .iter()
            .find(|m| m.event == self)
            .expect("every event is in the catalogue")
    }

    /// The message for these variable parts (in template order), as AWS writes it.
    pub fn render(self, values: &[&str]) -> String {
        let mut out = String::new();
        let mut values = values.iter();
        let mut rest = self.spec().template;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .expect("templates close their braces")
                + open;
            out.push_str(&rest[..open]);
            out.push_str(values.next().copied().unwrap_or(""));
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// A `details` text, recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognized {
    /// A documented message, with its variable parts by name.
    Known {
        /// The event.
        event: TunnelEvent,
        /// (`spi`, `1a2b3c4d`), in template order.
        values: Vec<(&'static str, String)>,
    },
    /// Anything else, kept as is.
    Unknown(String),
}

struct Matcher {
    event: TunnelEvent,
    regex: Regex,
    names: Vec<&'static str>,
}

/// A regex for a message template: its literal text through `literal`, each `{name}`
/// a capture with the pattern `placeholder` gives it, anchored, a final dot optional.
/// Returns the regex and the placeholder names in order.
pub(crate) fn template_regex(
    template: &'static str,
    literal: fn(&str) -> String,
    placeholder: fn(&str) -> &'static str,
) -> (Regex, Vec<&'static str>) {
    let mut pattern = String::from("^");
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .expect("templates close their braces")
            + open;
        pattern.push_str(&literal(&rest[..open]));
        let name = &rest[open + 1..close];
        names.push(name);
        pattern.push_str(placeholder(name));
        rest = &rest[close + 1..];
    }
    pattern.push_str(&literal(rest));
    pattern.push_str(r"\.?$");
    (
        Regex::new(&pattern).expect("catalogue patterns compile"),
        names,
    )
}

static MATCHERS: LazyLock<Vec<Matcher>> = LazyLock::new(|| {
    CATALOGUE
        .iter()
        .map(|spec| {
            let (regex, names) = template_regex(
                spec.template,
                // AWS's own pages differ in the dash of the IKEv1 DPD message.
                |text| regex::escape(text).replace(r" \- ", r"\s*[-–•]\s*"),
                // Counts and ids are numbers; SPIs and addresses are single tokens.
                |name| match name {
                    "retry_count" | "id" => r"(\d+)",
                    _ => r"(\S+)",
                },
            );
            Matcher {
                event: spec.event,
                regex,
                names,
            }
        })
        .collect()
});

/// Recognises a tunnel activity `details` text.
pub fn recognize(details: &str) -> Recognized {
    let text = details.trim();
    for matcher in MATCHERS.iter() {
        if let Some(captures) = matcher.regex.captures(text) {
            let values = matcher
                .names
                .iter()
                .enumerate()
                .map(|(i, name)| (*name, captures[i + 1].to_owned()))
                .collect();
            return Recognized::Known {
                event: matcher.event,
                values,
            };
        }
    }
    Recognized::Unknown(details.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_is_recognised_with_its_values() {
        for spec in CATALOGUE {
            let values: Vec<&str> = ["c0ffee12", "203.0.113.7", "42"].to_vec();
            let placeholders = spec.template.matches('{').count();
            let values: Vec<&str> = match spec.template {
                t if t.contains("{retry_count}") || t.contains("{id}") => vec!["3"],
                _ => values[..placeholders].to_vec(),
            };
            let text = spec.event.render(&values);
            match recognize(&text) {
                Recognized::Known { event, values: got } => {
                    assert_eq!(event, spec.event, "{text}");
                    let got: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
                    assert_eq!(got, values, "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn variable_parts_are_extracted_by_name() {
        assert_eq!(
            recognize("AWS tunnel detected a pre-shared key mismatch with cgw: 198.51.100.9"),
            Recognized::Known {
                event: PreSharedKeyMismatch,
                values: vec![("cgw", "198.51.100.9".into())]
            }
        );
        assert_eq!(
            recognize("AWS tunnel DPD timed out after 5 retransmits"),
            Recognized::Known {
                event: DpdTimedOut,
                values: vec![("retry_count", "5".into())]
            }
        );
        // AWS's pages render the IKEv1 DPD message with different separators.
        assert_eq!(
            recognize("Peer is not responsive • Declaring peer dead"),
            Recognized::Known {
                event: PeerNotResponsive,
                values: vec![]
            }
        );
    }

    #[test]
    fn unknown_messages_are_kept() {
        let text = "AWS tunnel did something new";
        assert_eq!(recognize(text), Recognized::Unknown(text.into()));
        assert!(matches!(
            recognize("AWS tunnel DPD timed out after many retransmits"),
            Recognized::Unknown(_)
        ));
    }

    #[test]
    fn every_event_has_a_remediation() {
        for spec in CATALOGUE {
            assert!(!spec.remediation.is_empty() && !spec.explanation.is_empty());
            assert_eq!(spec.event.spec().template, spec.template);
        }
    }
}
