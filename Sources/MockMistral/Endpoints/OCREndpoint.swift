import NIOCore

/// `POST /v1/ocr`: page-metered (reference §2, `usage_info.pages_processed`). The mock "reads"
/// the pages the request names (`pages: [0, 2]`), or one page when it names none.
extension EndpointContext {
    func ocr(document: JSONDocument) throws(RequestFailure) -> EndpointResult {
        let body: [ValidationIssue.Location] = [.key("body")]
        var validator = Validator(document: document)
        guard let object = validator.rootObject() else { throw .validation(validator.issues) }
        let model = validator.requiredString("model", in: object, objectValue: document.root, at: body)
        var docSize = 0
        if let source = object["document"] {
            if let sourceObject = source.object {
                let reference = sourceObject["document_url"]?.string ?? sourceObject["image_url"]?.string
                    ?? sourceObject["image_url"]?["url"]?.string ?? sourceObject["file_id"]?.string
                docSize = reference?.utf8.count ?? document.rawCount(source)
            } else {
                validator.add(type: "model_attributes_type", loc: body + [.key("document")],
                              msg: "Input should be a valid dictionary or object to extract fields from", input: .value(source))
            }
        } else {
            validator.missing("document", in: object, objectValue: document.root, at: body)
        }
        var pages = [0]
        if let requested = object.nonNull("pages") {
            if let list = validator.array(requested, at: body + [.key("pages")]) {
                pages = list.compactMap(\.integer)
            }
        }
        try validator.finish()
        guard let model else { fatalError("validated above") }
        try checkModel(model)

        let usage = MockUsage(promptTokens: 0, pagesProcessed: pages.count)
        var buffer = ByteBuffer()
        buffer.writeLiteral("{\"pages\":[")
        for (position, page) in pages.enumerated() {
            if position > 0 { buffer.writeLiteral(",") }
            buffer.writeLiteral("{\"index\":")
            buffer.writeJSONInt(page)
            buffer.writeLiteral(",\"markdown\":")
            buffer.writeJSONString("# Page \(page + 1)\n\nThis is a deterministic page from the Tollgate mock Mistral server.")
            buffer.writeLiteral(",\"images\":[],\"dimensions\":{\"dpi\":200,\"height\":2200,\"width\":1700}}")
        }
        buffer.writeLiteral("],\"model\":")
        buffer.writeJSONString(model)
        buffer.writeLiteral(",\"document_annotation\":null,\"usage_info\":{\"pages_processed\":")
        buffer.writeJSONInt(pages.count)
        buffer.writeLiteral(",\"doc_size_bytes\":")
        buffer.writeJSONInt(docSize)
        buffer.writeLiteral("}}")
        return .json(buffer, usage: usage)
    }
}
