/// What the gateway needs from a client's JSON request body, extracted by `RequestInspector` in one
/// pass over the bytes (the body itself is forwarded untouched, or with `max_tokens` injected).
public struct InspectedRequest: Sendable, Hashable {
    /// Top-level `model` (nil when absent or null: agents completions and agent conversations).
    public var model: String?
    /// Top-level `agent_id` (agents completions, conversations), nil when absent or null.
    public var agentID: String?
    /// Top-level `stream`; absent or null = false.
    public var stream: Bool = false
    /// Top-level `max_tokens`; nil when absent or null (the gateway may then inject one).
    public var maxTokens: Int?
    /// Top-level `n` (number of choices); nil when absent or null (Mistral then generates 1).
    public var n: Int?
    /// `completion_args.max_tokens` (conversations), nil when absent or null.
    public var completionArgsMaxTokens: Int?
    /// A conservative upper bound on the prompt tokens this body can produce (see `PromptTokenBoundRule`).
    public var promptTokensUpperBound: Int = 0
    /// Elements of top-level `messages` plus entries of conversation `inputs` (a string `inputs` is one).
    public var messageCount: Int = 0
    /// Items of top-level `input` (embeddings, moderations, classifications): a string is 1, an array
    /// its element count, absent or null 0.
    public var inputCount: Int = 0
    /// Values under an `image_url` key inside prompt fields (each budgeted at `tokensPerImage`).
    public var imageCount: Int = 0
    /// Values under a `document_url` or `file_id` key inside prompt fields. Their token cost cannot be
    /// bounded from the body (a URL can name a 500-page PDF); see `PromptTokenBoundRule.tokensPerDocument`.
    public var documentCount: Int = 0
    /// Top-level `safe_prompt` is true (Mistral prepends a safety system prompt).
    public var safePrompt: Bool = false
    /// Length of the body that was inspected, in bytes.
    public var bodyLength: Int = 0

    /// Where `MaxTokensInjection` writes when the client sent no `max_tokens`.
    var injectionPoint: InjectionPoint = .afterBrace(offset: 0, emptyObject: true)

    enum InjectionPoint: Sendable, Hashable {
        /// Insert `"max_tokens":N` right after the top-level `{` at `offset` (plus `,` unless empty).
        case afterBrace(offset: Int, emptyObject: Bool)
        /// Replace the bytes of the top-level `"max_tokens": null` value.
        case replaceNull(Range<Int>)
        /// The client set a value; nothing to inject.
        case none
    }

    /// Choices the completion will produce (`n`, default 1): completion tokens bill `n ×`.
    public var choices: Int { n ?? 1 }

    public init() {}
}

/// The rule behind `InspectedRequest.promptTokensUpperBound`.
///
/// Tokenizers of current Mistral models (Tekken) are byte-level BPE: every token covers at least one
/// UTF-8 byte of the text it encodes, so a text of `b` bytes encodes to at most `b` tokens (older
/// SentencePiece models fall back to one token per byte too). The bound therefore counts bytes:
///
///     bound = requestOverhead
///           + Σ over prompt fields: raw JSON byte length of the value as sent
///                                   + 1 per ',' and ':' inside it (json.dumps-style ", " / ": ")
///                                   − raw bytes of values under image_url / document_url / file_id
///           + tokensPerMessage   × messageCount (messages[] elements + conversation inputs entries)
///           + tokensPerImage     × imageCount
///           + tokensPerDocument  × documentCount
///           + safePromptAllowance   when "safe_prompt": true
///           + promptModeAllowance   when "prompt_mode" is non-null (Magistral reasoning system prompt)
///
/// Prompt fields (top level): `messages`, `prompt`, `suffix`, `input`, `inputs`, `instructions`,
/// `tools`, `tool_choice`, `response_format`, `prediction`, `completion_args`, `document`.
///
/// Why raw bytes: the raw bytes of a JSON string are never fewer than its decoded UTF-8 bytes (an
/// escape is at least as long as what it decodes to), and the raw span of a structured value also
/// covers its keys and punctuation. That covers texts the model sees verbatim (message content,
/// tool-call ids and arguments) and structures Mistral re-serialises into the prompt (tool schemas,
/// JSON schemas, with `json.dumps`' extra space after ',' and ':'). Keys and punctuation of plain
/// messages are pure slack, which together with `tokensPerMessage` covers chat-template control
/// tokens. It over-estimates real usage several-fold (Tekken averages ~3–4 bytes per token); that is
/// the price of never under-reserving.
///
/// What bytes cannot bound, hence the allowances: an image costs tokens by its pixel size (Pixtral
/// encoders: at most ~4.2k tokens for a 1024×1024 image, ~3.1k for 1540×1540 at patch 28), not by the
/// length of its URL or base64 data; a document URL or a file id can expand to any number of tokens;
/// agents and stored conversations (`agent_id`, appends to `/v1/conversations/{id}`) add
/// server-side instructions/history that is not in the body. Audio (`input_audio`, base64) is
/// counted by bytes, which is far above its real token count (Voxtral: 12.5 tokens per second).
public struct PromptTokenBoundRule: Sendable, Hashable {
    public var requestOverhead: Int
    public var tokensPerMessage: Int
    public var tokensPerImage: Int
    public var tokensPerDocument: Int
    public var safePromptAllowance: Int
    public var promptModeAllowance: Int

    public init(requestOverhead: Int = 16, tokensPerMessage: Int = 8, tokensPerImage: Int = 8192,
                tokensPerDocument: Int = 0, safePromptAllowance: Int = 256, promptModeAllowance: Int = 4096) {
        self.requestOverhead = requestOverhead
        self.tokensPerMessage = tokensPerMessage
        self.tokensPerImage = tokensPerImage
        self.tokensPerDocument = tokensPerDocument
        self.safePromptAllowance = safePromptAllowance
        self.promptModeAllowance = promptModeAllowance
    }

    public static let `default` = PromptTokenBoundRule()
}

/// Why `RequestInspector` rejected a body. `message` is user-facing (it becomes the 400 body's
/// `message`); `code` is a stable machine-readable code for the error envelope.
public enum RequestInspectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not well-formed JSON (RFC 8259) at `offset` (0-based byte offset into the body).
    case invalidJSON(offset: Int, reason: InvalidJSONReason)
    /// Arrays/objects nested deeper than `limit` (the top-level object is level 1).
    case nestingTooDeep(limit: Int, offset: Int)
    /// An object repeats a key (compared after unescaping). `path` locates the object
    /// ("" for the top level, e.g. "messages[0]" otherwise).
    case duplicateKey(key: String, path: String, offset: Int)
    /// The top-level value is not an object.
    case notAnObject
    /// A top-level field the gateway reads has the wrong type or range.
    case invalidField(name: String, requirement: String)

    public enum InvalidJSONReason: String, Sendable, Hashable {
        case unexpectedEnd = "unexpected end of input"
        case unexpectedCharacter = "unexpected character"
        case expectedKey = "expected a string key"
        case expectedColon = "expected ':'"
        case expectedCommaOrEnd = "expected ',' or a closing bracket"
        case invalidLiteral = "invalid literal"
        case invalidNumber = "invalid number"
        case controlCharacterInString = "unescaped control character in string"
        case invalidEscape = "invalid escape sequence"
        case loneSurrogate = "unpaired UTF-16 surrogate in \\u escape"
        case invalidUTF8 = "invalid UTF-8"
        case unterminatedString = "unterminated string"
        case trailingCharacters = "unexpected data after the JSON value"
    }

    public var message: String {
        switch self {
        case .invalidJSON(let offset, let reason):
            return "invalid JSON at byte \(offset): \(reason.rawValue)"
        case .nestingTooDeep(let limit, _):
            return "request body nesting exceeds \(limit) levels"
        case .duplicateKey(let key, let path, _):
            return path.isEmpty
                ? "duplicate key '\(key)' in the request body"
                : "duplicate key '\(key)' in the request body at \(path)"
        case .notAnObject:
            return "the request body must be a JSON object"
        case .invalidField(let name, let requirement):
            return "'\(name)' must be \(requirement)"
        }
    }

    public var code: String {
        switch self {
        case .invalidJSON: return "invalid_json"
        case .nestingTooDeep: return "nesting_too_deep"
        case .duplicateKey: return "duplicate_key"
        case .notAnObject: return "invalid_request_body"
        case .invalidField: return "invalid_field"
        }
    }

    public var description: String { message }
}
