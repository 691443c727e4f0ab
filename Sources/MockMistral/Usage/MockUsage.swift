/// What the mock bills for one request: exactly the numbers it puts in the response's `usage`
/// (or `usage_info` for OCR). The gateway's tests compare their ledger against these.
public struct MockUsage: Sendable, Hashable, CustomStringConvertible {
    public var promptTokens: Int
    public var completionTokens: Int
    /// `usage.prompt_tokens_details.cached_tokens` (a multiple of 64; 0 on a cache miss).
    public var cachedTokens: Int
    /// `usage_info.pages_processed` for OCR; nil for token-metered endpoints.
    public var pagesProcessed: Int?

    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int = 0, cachedTokens: Int = 0, pagesProcessed: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.pagesProcessed = pagesProcessed
    }

    public var description: String {
        if let pagesProcessed { return "pages_processed=\(pagesProcessed)" }
        return "prompt=\(promptTokens) completion=\(completionTokens) cached=\(cachedTokens) total=\(totalTokens)"
    }
}

/// The mock's deterministic token accounting. Nothing here depends on time or randomness, so
/// a test can predict the usage of any request from its body alone (see `MockMistral.usage(…)`).
///
/// Prompt tokens
/// - `textTokens(n bytes) = ceil(n / 4)`, counting UTF-8 bytes of *decoded* JSON strings.
/// - Chat, agents, chat moderation/classification: Σ over messages of `4 + textTokens(message bytes)`,
///   where message bytes = the `content` string, or for content arrays the sum over chunks of the
///   chunk's `text` (thinking chunks: their inner texts; other chunk types, e.g. image_url: the
///   chunk's compact JSON size), plus for each assistant `tool_calls[]` entry the bytes of
///   `function.name` and of `function.arguments` (the string, or the compact JSON size of an object).
///   Chat adds `textTokens(compact JSON size of "tools")` when `tools` is a non-empty array.
/// - "Compact JSON size" = the value written without whitespace, strings counted as decoded UTF-8
///   bytes + 2, numbers as sent; so re-serialising a body (other whitespace/escapes) keeps its usage.
/// - FIM: `4 + textTokens(bytes(prompt) + bytes(suffix))`.
/// - Embeddings, moderations, classifications: Σ over inputs of `max(1, textTokens(bytes(input)))`.
/// - Conversations: like chat over the stored history plus the new inputs (a string input is one
///   user message), plus `4 + textTokens(instructions)` when instructions are set.
///
/// Cached tokens: a chat/FIM/agents request carrying a non-null `prompt_cache_key` is a cache hit on
/// every full 64-token block: `cached = (prompt_tokens / 64) * 64`; otherwise 0.
///
/// Completion tokens (per choice; `n` choices bill `n ×`, prompt billed once)
/// - text reply: `L = configuration.completionTokens`; JSON mode (`response_format.type` json_object
///   or json_schema): `L = max(5, completionTokens)` so the object always closes;
/// - tool call (tools given and `tool_choice` "any"/"required"/a named function):
///   `L = max(1, textTokens(bytes(name) + bytes(arguments)))`;
/// - then `completion = min(L, max_tokens ?? L)` and `finish_reason = "length"` when capped
///   (a tool call that does not fit is dropped: content "" and no `tool_calls`).
/// Embeddings/moderations/classifications: 0. OCR: pages = `pages.count` if given, else 1.
public enum MockUsageRule {
    public static let bytesPerToken = 4
    public static let tokensPerMessage = 4
    public static let cacheBlock = 64
    /// Smallest reply a JSON-mode request gets: `{"reply": ""}` needs 5 tokens.
    public static let minimumJSONReplyTokens = 5

    public static func textTokens(utf8Bytes: Int) -> Int { (utf8Bytes + bytesPerToken - 1) / bytesPerToken }

    public static func cachedTokens(promptTokens: Int, hasPromptCacheKey: Bool) -> Int {
        hasPromptCacheKey ? (promptTokens / cacheBlock) * cacheBlock : 0
    }
}
