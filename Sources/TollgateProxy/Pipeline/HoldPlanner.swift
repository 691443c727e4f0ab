import NIOCore
import TollgateDomain
import TollgateStorage

/// What a metered request will be held and settled at, decided before admission.
struct HoldPlan: Sendable {
    /// The model id recorded with the hold (`agent:<id>` or `conversation:<id>` when unnamed).
    var model: String
    var price: Price
    /// The body to forward: the client's bytes, with `max_tokens` set when it was missing.
    var forwardBody: ByteBuffer
    /// Completion tokens the hold covers (all choices).
    var maxCompletion: Int
    /// The worst case the hold pays for; also what is charged when usage cannot be known.
    var worstCase: Usage
    /// Set when the request names no model: settlement re-prices at the model that answered.
    var priceOfAnsweringModel: (@Sendable (String) async -> Price?)?
    var stream: Bool

    var hold: Money { price.cost(of: worstCase) }
    var tokens: Int64 { Int64(worstCase.promptTokens + worstCase.completionTokens) }
}

/// Between authorization and admission: works out the worst-case cost of a metered request, so
/// the hold really bounds what it can spend. Generating endpoints always carry `max_tokens`
/// (set from the key or the configuration when absent); requests that name no model (agents,
/// conversations that go on) are held at the tenant's ceiling price.
struct HoldPlanner: Sendable {
    /// Prompt tokens held on top of an agent request's own bound for the agent's stored
    /// instructions and tools, which the request does not carry.
    static let agentInstructionsAllowance = 4096

    let configuration: ProxyConfiguration
    let prices: PriceCatalog

    func plan(route: ProxyRoute, path: String, body: ByteBuffer, key: ResolvedKey) async throws -> HoldPlan {
        let inspected = try BodyInspection.inspect(body)
        let isConversation = route.family == .conversations
        let continuesConversation = isConversation && path.split(separator: "/").count > 2
        let modelFromAnswer = (route.family == .agents || isConversation) && inspected.model == nil
        let unnamed = continuesConversation ? "conversation:\(path.split(separator: "/")[2])" : nil
        guard let model = inspected.model ?? (modelFromAnswer ? inspected.agentID.map { "agent:\($0)" } ?? unnamed : nil) else {
            throw ProxyError.badRequest("missing_model", modelFromAnswer || isConversation
                ? "The request body must name a 'model' or an 'agent_id'." : "The request body must name a 'model'.")
        }
        // Authorize the model. An agent's model is unknown until it answers, so a key limited to
        // some models cannot use agents.
        if modelFromAnswer, !key.allowedModels.isEmpty {
            throw ProxyError.forbidden("model_not_allowed",
                "This API key is limited to some models; agents run on a model the request does not name.")
        }
        try Authorizer.authorize(key, family: route.family, model: modelFromAnswer ? nil : model)
        let price = modelFromAnswer
            ? try await prices.ceiling(for: key)
            : try await prices.price(for: key, model: model, allowUnpriced: configuration.allowUnpricedModels)

        var forwardBody = body
        var maxCompletion = 0
        let defaultMax = key.defaultMaxTokens ?? configuration.defaultMaxTokens
        if isConversation {
            // Conversations take max_tokens inside completion_args.
            maxCompletion = inspected.completionArgsMaxTokens ?? defaultMax
            if inspected.completionArgsMaxTokens == nil {
                forwardBody = try BodyInspection.settingCompletionArgsMaxTokens(body, to: defaultMax)
            }
        } else if route.kind == .metered(completes: true) {
            maxCompletion = inspected.maxTokens ?? defaultMax
            if inspected.maxTokens == nil {
                forwardBody = BodyInspection.settingMaxTokens(body, to: defaultMax, inspected: inspected)
            }
            maxCompletion *= max(1, inspected.choices)
        }

        let worstCase: Usage
        if route.kind == .meteredByPage {
            worstCase = Usage(pages: try BodyInspection.requestedPageCount(body) ?? configuration.ocrDefaultPages)
        } else {
            // Stored agent instructions and conversation history are part of the prompt too.
            let promptBound = inspected.promptTokensUpperBound
                + (inspected.agentID != nil ? Self.agentInstructionsAllowance : 0)
                + (continuesConversation ? configuration.conversationHistoryTokens : 0)
            worstCase = Usage(promptTokens: promptBound, completionTokens: maxCompletion)
        }

        var priceOfAnsweringModel: (@Sendable (String) async -> Price?)?
        if modelFromAnswer {
            let catalog = prices
            priceOfAnsweringModel = { answered in try? await catalog.price(for: key, model: answered, allowUnpriced: false) }
        }
        return HoldPlan(model: model, price: price, forwardBody: forwardBody, maxCompletion: maxCompletion,
                        worstCase: worstCase, priceOfAnsweringModel: priceOfAnsweringModel, stream: inspected.stream)
    }
}
