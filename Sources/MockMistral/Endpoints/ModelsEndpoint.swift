import NIOCore

/// `GET /v1/models` and `GET /v1/models/{model_id}` (reference §4.4). Like the live API, every
/// alias is its own card whose `name` is the pinned id, and `created` is the time of the request.
extension EndpointContext {
    func listModels() -> EndpointResult {
        let created = WallClock.unixSeconds()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(ModelCatalog.allNames.count * 700)
        buffer.writeLiteral("{\"object\":\"list\",\"data\":[")
        var first = true
        for model in ModelCatalog.models {
            for name in model.names {
                if !first { buffer.writeLiteral(",") }
                first = false
                Self.writeCard(model, as: name, created: created, into: &buffer)
            }
        }
        buffer.writeLiteral("]}")
        return .json(buffer)
    }

    func retrieveModel(_ id: String) throws(RequestFailure) -> EndpointResult {
        guard let model = ModelCatalog.spec(named: id) else {
            throw .notFound(message: "Model not found: \(id)")
        }
        var buffer = ByteBuffer()
        Self.writeCard(model, as: id, created: WallClock.unixSeconds(), into: &buffer)
        return .json(buffer)
    }

    static func writeCard(_ model: ModelSpec, as name: String, created: Int, into buffer: inout ByteBuffer) {
        buffer.writeLiteral("{\"id\":")
        buffer.writeJSONString(name)
        buffer.writeLiteral(",\"object\":\"model\",\"created\":")
        buffer.writeJSONInt(created)
        buffer.writeLiteral(",\"owned_by\":\"mistralai\",\"capabilities\":{")
        for (index, (key, flag)) in ModelSpec.Capabilities.cardKeys.enumerated() {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeJSONString(key)
            buffer.writeLiteral(":")
            buffer.writeJSONBool(!flag.isEmpty && model.capabilities.contains(flag))
        }
        buffer.writeLiteral("},\"name\":")
        buffer.writeJSONString(model.id)
        buffer.writeLiteral(",\"description\":")
        buffer.writeJSONString(model.description)
        buffer.writeLiteral(",\"max_context_length\":")
        buffer.writeJSONInt(model.contextLength)
        buffer.writeLiteral(",\"aliases\":[")
        for (index, alias) in model.names.filter({ $0 != name }).enumerated() {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeJSONString(alias)
        }
        buffer.writeLiteral("],\"deprecation\":")
        buffer.writeJSONOptionalString(model.deprecation)
        buffer.writeLiteral(",\"deprecation_replacement_model\":")
        buffer.writeJSONOptionalString(model.replacement)
        buffer.writeLiteral(",\"default_model_temperature\":")
        if let temperature = model.defaultTemperature { buffer.writeJSONDouble(temperature) } else { buffer.writeLiteral("null") }
        buffer.writeLiteral(",\"type\":\"base\"}")
    }
}
