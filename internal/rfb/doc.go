// Package rfb implements the two halves of an RFB (VNC) handshake that a
// broker needs so that console secrets stay with the agent: ClientAuth
// authenticates to a real VNC server with its password, and ServeNone
// offers a viewer security type None; after both, the caller relays bytes
// from ClientInit on. It also writes TigerVNC password files and holds
// the few wire types (ServerInit, PixelFormat) that tests and synthetic
// sources share.
//
// The protocol is RFC 6143. Versions 3.3, 3.7 and 3.8 differ only in the
// handshake; from ClientInit on they are the same, which is what lets a
// gateway join a 3.3 viewer to a 3.8 server.
package rfb
