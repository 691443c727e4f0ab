import HTTPTypes

/// The Mistral endpoints the mock implements (reference §2). Matching is a hand-written switch on
/// path segments: cheaper than a trie for a dozen routes, and it lets unknown paths get Mistral's
/// error shape instead of the framework's.
enum Route: Sendable, Equatable {
    case chatCompletions
    case fimCompletions
    case agentsCompletions
    case embeddings
    case listModels
    case retrieveModel(id: String)
    case moderations
    case chatModerations
    case classifications
    case chatClassifications
    case ocr
    case startConversation
    case appendConversation(id: String)
    case restartConversation(id: String)

    enum Match: Equatable {
        case route(Route)
        case methodNotAllowed
        case notFound
    }

    static func match(method: HTTPRequest.Method, path: String) -> Match {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        // A path starts with "/", so segments[0] is "".
        guard segments.count >= 3, segments[0].isEmpty, segments[1] == "v1" else { return .notFound }
        let route: Route
        let expected: HTTPRequest.Method
        switch segments.count {
        case 3:
            switch segments[2] {
            case "embeddings": route = .embeddings; expected = .post
            case "models": route = .listModels; expected = .get
            case "moderations": route = .moderations; expected = .post
            case "classifications": route = .classifications; expected = .post
            case "ocr": route = .ocr; expected = .post
            case "conversations": route = .startConversation; expected = .post
            default: return .notFound
            }
        case 4:
            switch (segments[2], segments[3]) {
            case ("chat", "completions"): route = .chatCompletions; expected = .post
            case ("fim", "completions"): route = .fimCompletions; expected = .post
            case ("agents", "completions"): route = .agentsCompletions; expected = .post
            case ("chat", "moderations"): route = .chatModerations; expected = .post
            case ("chat", "classifications"): route = .chatClassifications; expected = .post
            case ("models", let id) where !id.isEmpty: route = .retrieveModel(id: String(id)); expected = .get
            case ("conversations", let id) where !id.isEmpty: route = .appendConversation(id: String(id)); expected = .post
            default: return .notFound
            }
        case 5:
            guard segments[2] == "conversations", !segments[3].isEmpty, segments[4] == "restart" else { return .notFound }
            route = .restartConversation(id: String(segments[3])); expected = .post
        default:
            return .notFound
        }
        return method == expected ? .route(route) : .methodNotAllowed
    }

    /// Stable label for stats (ids collapsed into placeholders).
    var template: String {
        switch self {
        case .chatCompletions: return "/v1/chat/completions"
        case .fimCompletions: return "/v1/fim/completions"
        case .agentsCompletions: return "/v1/agents/completions"
        case .embeddings: return "/v1/embeddings"
        case .listModels: return "/v1/models"
        case .retrieveModel: return "/v1/models/{model_id}"
        case .moderations: return "/v1/moderations"
        case .chatModerations: return "/v1/chat/moderations"
        case .classifications: return "/v1/classifications"
        case .chatClassifications: return "/v1/chat/classifications"
        case .ocr: return "/v1/ocr"
        case .startConversation: return "/v1/conversations"
        case .appendConversation: return "/v1/conversations/{conversation_id}"
        case .restartConversation: return "/v1/conversations/{conversation_id}/restart"
        }
    }

    /// Routes that answer `stream: true` with server-sent events (and so can take stream faults).
    var canStream: Bool {
        switch self {
        case .chatCompletions, .fimCompletions, .agentsCompletions, .startConversation, .appendConversation, .restartConversation:
            return true
        default:
            return false
        }
    }

    var hasJSONBody: Bool {
        switch self {
        case .listModels, .retrieveModel: return false
        default: return true
        }
    }
}
