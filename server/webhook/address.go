package webhook

import (
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/feedbackd/feedbackd/server/store"
)

// Addresses no delivery may reach, besides loopback (refused unless the
// server allows it), private, link-local, unspecified and multicast
// addresses, which netip names: shared address space (RFC 6598, where
// some clouds serve instance metadata), the IETF protocol assignments,
// benchmarking, and the reserved range.
var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// refused says why a delivery must not connect to a, or "" when it may:
// a key holder must not make the server reach internal services (cloud
// metadata, databases, admin ports) through a webhook.
func refused(a netip.Addr, allowLoopback bool) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		if allowLoopback {
			return ""
		}
		return "a loopback address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address"
	case a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "an unspecified or multicast address"
	}
	for _, p := range refusedPrefixes {
		if p.Contains(a) {
			return "a reserved address"
		}
	}
	return ""
}

// CheckURL says whether u may be a webhook's URL: https, or http to a
// loopback host when allowLoopback (tests, local development); no user
// name or password in it; and a host that is not an address a delivery
// would refuse. The address a name resolves to is checked again at each
// delivery. Its errors are EINVALID, with a message for the caller.
func CheckURL(u string, allowLoopback bool) error {
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() || p.Host == "" || p.Opaque != "" {
		return store.Errorf(store.EINVALID, "url must be an absolute https URL")
	}
	if p.User != nil {
		return store.Errorf(store.EINVALID, "url must not hold a user name or password")
	}
	if p.Fragment != "" {
		return store.Errorf(store.EINVALID, "url must not have a fragment")
	}
	host := p.Hostname()
	loopback := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if a, err := netip.ParseAddr(host); err == nil {
		if why := refused(a, allowLoopback); why != "" {
			return store.Errorf(store.EINVALID, "url must not point at %s", why)
		}
		loopback = a.Unmap().IsLoopback()
	} else if loopback && !allowLoopback {
		return store.Errorf(store.EINVALID, "url must not point at a loopback address")
	}
	switch p.Scheme {
	case "https":
	case "http":
		if !loopback || !allowLoopback {
			return store.Errorf(store.EINVALID, "url must be https (plain http only to a loopback host, when the server runs with --webhooks-allow-loopback)")
		}
	default:
		return store.Errorf(store.EINVALID, "url must be an absolute https URL")
	}
	if port := p.Port(); port != "" {
		if _, err := net.LookupPort("tcp", port); err != nil {
			return store.Errorf(store.EINVALID, "url has an invalid port")
		}
	}
	return nil
}
