#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Thrown to abandon a response after the connection was deliberately broken; Hummingbird then
/// stops using the connection without writing anything else.
struct MockConnectionDropped: Error {}

enum ConnectionFaults {
    /// SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN, which is what a
    /// crashed upstream or a middlebox reset looks like to the client.
    static func reset(_ channel: any Channel) async {
        if let provider = channel as? any SocketOptionProvider {
            try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await channel.close(mode: .all)
    }

    /// Close after what has been written so far: the client gets the bytes, then EOF without the
    /// chunked terminator. Writes and this close are queued on the same event loop, so the written
    /// events go out first.
    static func disconnect(_ channel: any Channel) async {
        try? await channel.close(mode: .all)
    }
}
