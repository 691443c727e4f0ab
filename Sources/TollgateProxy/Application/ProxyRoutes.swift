import HTTPTypes
import TollgateDomain

/// How the gateway treats a Mistral path.
enum RouteKind: Sendable, Equatable {
    /// Billed by tokens from `usage`: the request carries `model`; `completes` means it generates
    /// output bounded by `max_tokens` (chat, FIM) rather than only reading input (embeddings, …).
    case metered(completes: Bool)
    /// Billed per page from `usage_info.pages_processed` (OCR).
    case meteredByPage
    /// Forwarded after authentication and the endpoint allow-list; nothing to bill.
    case passThrough
}

struct ProxyRoute: Sendable {
    let family: EndpointFamily
    let kind: RouteKind
}

enum ProxyRoutes {
    /// Classifies a request path (already without query). Returns nil for unknown paths (404).
    static func route(method: HTTPRequest.Method, path: String) -> ProxyRoute? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0] == "v1" else { return nil }
        let rest = parts.dropFirst().map(String.init)
        switch (method, rest.first ?? "") {
        case (.post, "chat"):
            switch rest.dropFirst().first {
            case "completions" where rest.count == 2: return ProxyRoute(family: .chat, kind: .metered(completes: true))
            case "moderations" where rest.count == 2: return ProxyRoute(family: .moderations, kind: .metered(completes: false))
            case "classifications" where rest.count == 2: return ProxyRoute(family: .classifications, kind: .metered(completes: false))
            default: return nil
            }
        case (.post, "fim") where rest == ["fim", "completions"]:
            return ProxyRoute(family: .fim, kind: .metered(completes: true))
        case (.post, "embeddings") where rest.count == 1:
            return ProxyRoute(family: .embeddings, kind: .metered(completes: false))
        case (.post, "moderations") where rest.count == 1:
            return ProxyRoute(family: .moderations, kind: .metered(completes: false))
        case (.post, "classifications") where rest.count == 1:
            return ProxyRoute(family: .classifications, kind: .metered(completes: false))
        case (.get, "models"):
            return rest.count <= 2 ? ProxyRoute(family: .models, kind: .passThrough) : nil
        case (_, "files"):
            return ProxyRoute(family: .files, kind: .passThrough)
        case (_, "batch"):
            return ProxyRoute(family: .batch, kind: .passThrough)
        case (.post, "agents") where rest == ["agents", "completions"]:
            // The agent's model is not in the request: held at the tenant's ceiling price,
            // settled at the price of the model the response names.
            return ProxyRoute(family: .agents, kind: .metered(completes: true))
        case (_, "agents"):
            return ProxyRoute(family: .agents, kind: .passThrough)
        case (.post, "conversations") where rest.count == 1 || rest.count == 2 || (rest.count == 3 && rest[2] == "restart"):
            // Start, append, restart: held with a history allowance when the conversation exists
            // already (its stored history is part of the prompt), priced by the answering model.
            return ProxyRoute(family: .conversations, kind: .metered(completes: true))
        case (.get, "conversations"), (.delete, "conversations"):
            return ProxyRoute(family: .conversations, kind: .passThrough)
        case (.post, "ocr") where rest.count == 1:
            return ProxyRoute(family: .ocr, kind: .meteredByPage)
        default:
            return nil
        }
    }
}
