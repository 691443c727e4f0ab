import AsyncHTTPClient
import Foundation
import NIOCore

/// A chat completion request straight to a proxy's port (for tests that read the response as it
/// streams, which the Hummingbird test client cannot).
func chatRequest(port: Int, key: String, body: Data) -> HTTPClientRequest {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
    request.method = .POST
    request.headers.add(name: "Authorization", value: "Bearer \(key)")
    request.headers.add(name: "Content-Type", value: "application/json")
    request.body = .bytes(ByteBuffer(data: body))
    return request
}
