/// Decides whether a chat request gets a tool call, and builds its arguments.
///
/// Real models decide for themselves under `tool_choice: "auto"`; a mock must be predictable, so it
/// calls a tool only when forced: `"any"`/`"required"` (first function tool) or
/// `{"type":"function","function":{"name":…}}` (that tool). `"auto"`/`"none"` get a text reply.
enum ToolCallPlanner {
    struct Plan: Sendable {
        var name: String
        var arguments: String
    }

    static func forcedCall(tools: JSONValue?, toolChoice: JSONValue?, in document: JSONDocument) -> Plan? {
        guard let functions = tools?.array?.compactMap({ tool -> JSONObject? in
            guard tool["type"]?.string ?? "function" == "function" else { return nil }
            return tool["function"]?.object
        }), !functions.isEmpty, let toolChoice else { return nil }

        let chosen: JSONObject?
        switch toolChoice.kind {
        case .string(let mode) where mode == "any" || mode == "required":
            chosen = functions.first
        case .object(let choice):
            guard let name = choice["function"]?["name"]?.string else { return nil }
            chosen = functions.first { $0["name"]?.string == name } ?? JSONObject(members: [("name", JSONValue(kind: .string(name), range: 0..<0))])
        default:
            chosen = nil
        }
        guard let chosen, let name = chosen["name"]?.string else { return nil }
        return Plan(name: name, arguments: arguments(forSchema: chosen["parameters"], in: document))
    }

    /// One placeholder per declared property, in declaration order, serialised the way Python's
    /// `json.dumps` does (`{"location": "mock", "days": 1}`), which is what live tool calls look like.
    static func arguments(forSchema schema: JSONValue?, in document: JSONDocument) -> String {
        guard let properties = schema?["properties"]?.object, !properties.members.isEmpty else { return "{}" }
        var text = "{"
        for (index, property) in properties.members.enumerated() {
            if index > 0 { text += ", " }
            text += jsonEncodedString(property.key)
            text += ": "
            text += placeholder(for: property.value, in: document)
        }
        return text + "}"
    }

    private static func placeholder(for schema: JSONValue, in document: JSONDocument) -> String {
        if let first = schema["enum"]?.array?.first {
            return String(decoding: document.raw(first), as: UTF8.self)
        }
        var type = schema["type"]?.string
        if type == nil, let types = schema["type"]?.array {
            type = types.lazy.compactMap(\.string).first { $0 != "null" }
        }
        switch type {
        case "integer", "number": return "1"
        case "boolean": return "true"
        case "array": return "[]"
        case "object": return "{}"
        case "null": return "null"
        default: return "\"mock\""
        }
    }
}
