import NIOCore

/// `POST /v1/embeddings`: one vector per input, prompt-only usage (reference §3.3, §4.3).
extension EndpointContext {
    struct EmbeddingsRequest {
        var model: String
        var inputs: [String]
        var dimension: Int
        var base64: Bool
        var usage: MockUsage
    }

    static func parseEmbeddings(_ document: JSONDocument, rejectUnknownModels: Bool) throws(RequestFailure) -> EmbeddingsRequest {
        let body: [ValidationIssue.Location] = [.key("body")]
        var validator = Validator(document: document)
        guard let object = validator.rootObject() else { throw .validation(validator.issues) }
        let model = validator.requiredString("model", in: object, objectValue: document.root, at: body)
        let inputs = Self.stringOrStrings("input", in: object, root: document.root, validator: &validator)
        let dimension = validator.optionalInteger("output_dimension", in: object, at: body, minimum: 1)
        if let dimension, dimension > EmbeddingVectors.maximumDimension {
            validator.add(type: "less_than_equal", loc: body + [.key("output_dimension")],
                          msg: "Input should be less than or equal to \(EmbeddingVectors.maximumDimension)",
                          input: .literal(String(dimension)), ctx: "{\"le\":\(EmbeddingVectors.maximumDimension)}")
        }
        if let dtype = object.nonNull("output_dtype"), !["float", "int8", "uint8", "binary", "ubinary"].contains(dtype.string ?? "") {
            validator.add(type: "enum", loc: body + [.key("output_dtype")],
                          msg: "Input should be 'float', 'int8', 'uint8', 'binary' or 'ubinary'", input: .value(dtype),
                          ctx: "{\"expected\":\"'float', 'int8', 'uint8', 'binary' or 'ubinary'\"}")
        }
        var base64 = false
        if let format = object.nonNull("encoding_format") {
            switch format.string {
            case "float": break
            case "base64": base64 = true
            default:
                validator.add(type: "enum", loc: body + [.key("encoding_format")], msg: "Input should be 'float' or 'base64'",
                              input: .value(format), ctx: "{\"expected\":\"'float' or 'base64'\"}")
            }
        }
        validator.forbidExtraFields(object, allowed: AllowedFields.embeddings, at: body)
        try validator.finish()
        guard let model, let inputs else { fatalError("validated above") }
        if rejectUnknownModels, !ModelCatalog.isKnown(model) { throw .invalidModel(model) }

        let defaultDimension = model.hasPrefix("codestral-embed") ? 1536 : 1024
        return EmbeddingsRequest(
            model: model,
            inputs: inputs,
            dimension: dimension ?? defaultDimension,
            base64: base64,
            usage: MockUsage(promptTokens: PromptTokens.inputs(inputs))
        )
    }

    /// `string | string[]` as pydantic validates it: a bad value fails both union members.
    static func stringOrStrings(_ key: String, in object: JSONObject, root: JSONValue, validator: inout Validator) -> [String]? {
        let loc: [ValidationIssue.Location] = [.key("body"), .key(key)]
        guard let value = object[key] else {
            validator.missing(key, in: object, objectValue: root, at: [.key("body")])
            return nil
        }
        if let string = value.string { return [string] }
        if let array = value.array {
            var strings: [String] = []
            strings.reserveCapacity(array.count)
            var failed = false
            for (index, element) in array.enumerated() {
                if let string = element.string {
                    strings.append(string)
                } else {
                    validator.add(type: "string_type", loc: loc + [.key("list[str]"), .index(index)], msg: "Input should be a valid string", input: .value(element))
                    failed = true
                }
            }
            return failed ? nil : strings
        }
        validator.add(type: "string_type", loc: loc + [.key("str")], msg: "Input should be a valid string", input: .value(value))
        validator.add(type: "list_type", loc: loc + [.key("list[str]")], msg: "Input should be a valid list", input: .value(value))
        return nil
    }

    func embeddings(document: JSONDocument) throws(RequestFailure) -> EndpointResult {
        let request = try Self.parseEmbeddings(document, rejectUnknownModels: configuration.rejectUnknownModels)
        let vectors = EmbeddingVectors.shared
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256 + request.inputs.count * request.dimension * (request.base64 ? 6 : 12))
        buffer.writeLiteral("{\"id\":")
        buffer.writeJSONString(Identifiers.hex32())
        buffer.writeLiteral(",\"object\":\"list\",\"data\":[")
        for (index, input) in request.inputs.enumerated() {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeLiteral("{\"object\":\"embedding\",\"embedding\":")
            var vector = request.base64
                ? vectors.base64(dimension: request.dimension, input: input)
                : vectors.json(dimension: request.dimension, input: input)
            buffer.writeBuffer(&vector)
            buffer.writeLiteral(",\"index\":")
            buffer.writeJSONInt(index)
            buffer.writeLiteral("}")
        }
        buffer.writeLiteral("],\"model\":")
        buffer.writeJSONString(request.model)
        buffer.writeLiteral(",\"usage\":")
        writeInputUsage(request.usage, into: &buffer)
        buffer.writeLiteral("}")
        return .json(buffer, usage: request.usage)
    }

    /// The usage object of embeddings (live fixture, §4.3) and moderations (§4.5): prompt only.
    func writeInputUsage(_ usage: MockUsage, into buffer: inout ByteBuffer, requestCount: Bool = false) {
        buffer.writeLiteral("{\"prompt_audio_seconds\":null,\"prompt_tokens\":")
        buffer.writeJSONInt(usage.promptTokens)
        buffer.writeLiteral(",\"total_tokens\":")
        buffer.writeJSONInt(usage.totalTokens)
        buffer.writeLiteral(",\"completion_tokens\":0,\"request_count\":")
        if requestCount { buffer.writeLiteral("1") } else { buffer.writeLiteral("null") }
        buffer.writeLiteral(",\"prompt_tokens_details\":null,\"prompt_token_details\":null}")
    }
}
