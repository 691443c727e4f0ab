/// One pydantic-style validation error, rendered into the 422 body exactly like FastAPI does:
/// `{"type":…,"loc":["body",…],"msg":…,"input":…,"ctx":{…}}`.
struct ValidationIssue: Sendable {
    enum Location: Sendable {
        case key(String)
        case index(Int)
    }

    enum Input: Sendable {
        /// Echo the client's bytes for this value.
        case value(JSONValue)
        /// Echo a literal JSON text (e.g. `{}` or `null`).
        case literal(String)
    }

    var type: String
    var loc: [Location]
    var msg: String
    var input: Input
    /// Already-encoded JSON object text for `ctx`, when pydantic adds one.
    var ctx: String?
}

/// Failures that end request handling with an error response (status + Mistral-shaped body).
enum RequestFailure: Error, Sendable {
    /// 422, in the configured `ValidationErrorStyle`.
    case validation([ValidationIssue])
    /// 400 in the Mistral envelope, e.g. mistral-common's message checks.
    case badRequest(message: String)
    /// 400 `invalid_model` with code 1500, as observed for unknown model ids.
    case invalidModel(String)
    /// 404 in the Mistral envelope.
    case notFound(message: String)
}

/// Collects validation issues for one body, the way pydantic does: every field is checked and all
/// problems are reported together, extra (forbidden) fields last.
struct Validator {
    let document: JSONDocument
    private(set) var issues: [ValidationIssue] = []

    init(document: JSONDocument) {
        self.document = document
    }

    mutating func add(_ issue: ValidationIssue) { issues.append(issue) }

    mutating func add(type: String, loc: [ValidationIssue.Location], msg: String, input: ValidationIssue.Input, ctx: String? = nil) {
        issues.append(ValidationIssue(type: type, loc: loc, msg: msg, input: input, ctx: ctx))
    }

    func finish() throws(RequestFailure) {
        if !issues.isEmpty { throw .validation(issues) }
    }

    /// The body must be a JSON object.
    mutating func rootObject() -> JSONObject? {
        if let object = document.root.object { return object }
        add(type: "model_attributes_type", loc: [.key("body")],
            msg: "Input should be a valid dictionary or object to extract fields from", input: .value(document.root))
        return nil
    }

    mutating func forbidExtraFields(_ object: JSONObject, allowed: Set<String>, at loc: [ValidationIssue.Location]) {
        for member in object.members where !allowed.contains(member.key) {
            add(type: "extra_forbidden", loc: loc + [.key(member.key)], msg: "Extra inputs are not permitted", input: .value(member.value))
        }
    }

    mutating func missing(_ key: String, in object: JSONObject, objectValue: JSONValue, at loc: [ValidationIssue.Location]) {
        add(type: "missing", loc: loc + [.key(key)], msg: "Field required", input: .value(objectValue))
    }

    /// Required string field.
    mutating func requiredString(_ key: String, in object: JSONObject, objectValue: JSONValue, at loc: [ValidationIssue.Location]) -> String? {
        guard let value = object[key] else {
            missing(key, in: object, objectValue: objectValue, at: loc)
            return nil
        }
        return string(value, at: loc + [.key(key)])
    }

    mutating func string(_ value: JSONValue, at loc: [ValidationIssue.Location]) -> String? {
        if let string = value.string { return string }
        add(type: "string_type", loc: loc, msg: "Input should be a valid string", input: .value(value))
        return nil
    }

    /// Optional (nullable) string.
    mutating func optionalString(_ key: String, in object: JSONObject, at loc: [ValidationIssue.Location]) -> String? {
        guard let value = object.nonNull(key) else { return nil }
        return string(value, at: loc + [.key(key)])
    }

    /// Optional (nullable) integer with pydantic's `ge` constraint.
    mutating func optionalInteger(_ key: String, in object: JSONObject, at loc: [ValidationIssue.Location], minimum: Int? = nil) -> Int? {
        guard let value = object.nonNull(key) else { return nil }
        let fieldLoc = loc + [.key(key)]
        guard case .number(let number) = value.kind else {
            add(type: "int_type", loc: fieldLoc, msg: "Input should be a valid integer", input: .value(value))
            return nil
        }
        guard let integer = value.integer else {
            if number.rounded(.towardZero) != number {
                add(type: "int_from_float", loc: fieldLoc, msg: "Input should be a valid integer, got a number with a fractional part", input: .value(value))
            } else {
                add(type: "int_type", loc: fieldLoc, msg: "Input should be a valid integer", input: .value(value))
            }
            return nil
        }
        if let minimum, integer < minimum {
            add(type: "greater_than_equal", loc: fieldLoc, msg: "Input should be greater than or equal to \(minimum)",
                input: .value(value), ctx: "{\"ge\":\(minimum)}")
            return nil
        }
        return integer
    }

    /// Optional (nullable) number within an inclusive range.
    mutating func optionalNumber(_ key: String, in object: JSONObject, at loc: [ValidationIssue.Location],
                                 minimum: Double? = nil, exclusiveMinimum: Double? = nil, maximum: Double? = nil) {
        guard let value = object.nonNull(key) else { return }
        let fieldLoc = loc + [.key(key)]
        guard let number = value.number else {
            add(type: "float_type", loc: fieldLoc, msg: "Input should be a valid number", input: .value(value))
            return
        }
        if let minimum, number < minimum {
            add(type: "greater_than_equal", loc: fieldLoc, msg: "Input should be greater than or equal to \(Self.pythonNumber(minimum))",
                input: .value(value), ctx: "{\"ge\":\(Self.pythonNumber(minimum))}")
        } else if let exclusiveMinimum, number <= exclusiveMinimum {
            add(type: "greater_than", loc: fieldLoc, msg: "Input should be greater than \(Self.pythonNumber(exclusiveMinimum))",
                input: .value(value), ctx: "{\"gt\":\(Self.pythonNumber(exclusiveMinimum))}")
        } else if let maximum, number > maximum {
            add(type: "less_than_equal", loc: fieldLoc, msg: "Input should be less than or equal to \(Self.pythonNumber(maximum))",
                input: .value(value), ctx: "{\"le\":\(Self.pythonNumber(maximum))}")
        }
    }

    mutating func optionalBool(_ key: String, in object: JSONObject, at loc: [ValidationIssue.Location]) -> Bool? {
        guard let value = object.nonNull(key) else { return nil }
        if let bool = value.bool { return bool }
        add(type: "bool_type", loc: loc + [.key(key)], msg: "Input should be a valid boolean", input: .value(value))
        return nil
    }

    /// `stream` is a non-nullable boolean defaulting to false.
    mutating func streamFlag(in object: JSONObject, at loc: [ValidationIssue.Location]) -> Bool {
        guard let value = object["stream"] else { return false }
        if let bool = value.bool { return bool }
        add(type: "bool_type", loc: loc + [.key("stream")], msg: "Input should be a valid boolean", input: .value(value))
        return false
    }

    mutating func array(_ value: JSONValue, at loc: [ValidationIssue.Location]) -> [JSONValue]? {
        if let array = value.array { return array }
        add(type: "list_type", loc: loc, msg: "Input should be a valid list", input: .value(value))
        return nil
    }

    /// 1.5 → "1.5", 0 → "0" (pydantic prints constraint values with Python's repr).
    static func pythonNumber(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

/// Top-level fields each strict endpoint accepts (`additionalProperties: false` in the spec;
/// reference §3). Anything else is a 422 `extra_forbidden`, which is how the live API treats
/// `stream_options`, `max_completion_tokens`, `user`, `store`, `seed`.
enum AllowedFields {
    static let chat: Set<String> = [
        "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed",
        "metadata", "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty",
        "n", "prediction", "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails",
        "prompt_cache_key", "service_tier", "safe_prompt",
        // SDK 3.7.0 sends these although the 2026-08 docs spec does not list them (reference §3.1).
        "min_tokens", "repetition_penalty", "top_k", "logprobs", "top_logprobs", "prompt_logprobs",
        "top_prompt_logprobs",
    ]

    /// AgentsCompletionRequest: the chat fields minus the sampling knobs the agent owns, plus `agent_id`.
    static let agents: Set<String> = {
        var fields = chat
        fields.subtract(["model", "temperature", "top_p", "safe_prompt"])
        fields.formUnion(["agent_id", "agent_version"])
        return fields
    }()

    static let fim: Set<String> = [
        "model", "prompt", "suffix", "temperature", "top_p", "max_tokens", "min_tokens", "stream", "stop",
        "random_seed", "metadata", "prompt_cache_key",
    ]

    static let embeddings: Set<String> = ["model", "input", "output_dimension", "output_dtype", "encoding_format", "metadata"]

    /// Message fields per role; `name`/`tool_calls` on user messages and `reasoning_content` on
    /// assistant messages are the classic OpenAI-client offenders the API rejects.
    static func message(role: String) -> Set<String>? {
        switch role {
        case "system": return ["role", "content"]
        case "user": return ["role", "content"]
        case "assistant": return ["role", "content", "tool_calls", "prefix"]
        case "tool": return ["role", "content", "tool_call_id", "name"]
        default: return nil
        }
    }
}
