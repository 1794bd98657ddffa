public import Tessera

extension Qdrant {
    /// The body of `POST /collections/aliases`: `{"actions": [...]}`, each action one of `create_alias`
    /// (`collection_name`, `alias_name`), `delete_alias` (`alias_name`) or `rename_alias` (`old_alias_name`,
    /// `new_alias_name`), applied in order, all or none.
    public struct ChangeAliases: Decodable, Sendable {
        public var changes: [AliasChange]

        enum CodingKeys: String, CodingKey { case actions }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            var actions = try container.nestedUnkeyedContainer(forKey: .actions)
            changes = []
            while !actions.isAtEnd {
                let path = decoder.codingPath + [CodingKeys.actions, JSONKey(intValue: actions.currentIndex)]
                let action = try actions.decode(JSONValue.self)
                changes.append(try Self.change(action, path: path))
            }
        }

        static func change(_ action: JSONValue, path: [any CodingKey]) throws -> AliasChange {
            guard case .object(let object) = action, object.count == 1, let (kind, body) = object.first,
                case .object(let fields) = body
            else {
                throw invalid(path, "an alias action is one of create_alias, delete_alias, rename_alias")
            }
            func string(_ name: String, _ allowed: Set<String>) throws -> String {
                if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
                    throw invalid(path + [JSONKey(stringValue: kind)], "unknown field '\(unknown)'")
                }
                guard case .string(let text)? = fields[name] else {
                    throw invalid(path + [JSONKey(stringValue: kind), JSONKey(stringValue: name)], "missing \(name)")
                }
                return text
            }
            switch kind {
            case "create_alias":
                let allowed: Set = ["collection_name", "alias_name"]
                return .create(
                    alias: try string("alias_name", allowed),
                    collection: try string("collection_name", allowed)
                )
            case "delete_alias":
                return .delete(alias: try string("alias_name", ["alias_name"]))
            case "rename_alias":
                let allowed: Set = ["old_alias_name", "new_alias_name"]
                return .rename(old: try string("old_alias_name", allowed), new: try string("new_alias_name", allowed))
            default:
                throw invalid(
                    path + [JSONKey(stringValue: kind)],
                    "unknown alias action '\(kind)' (expected create_alias, delete_alias, rename_alias)"
                )
            }
        }
    }

    /// The `result` of `GET /aliases` and `GET /collections/{name}/aliases`.
    public struct AliasesResponse: Encodable, Sendable {
        public struct Alias: Encodable, Sendable {
            public var aliasName: String
            public var collectionName: String

            enum CodingKeys: String, CodingKey {
                case aliasName = "alias_name"
                case collectionName = "collection_name"
            }
        }

        public var aliases: [Alias]

        /// The answer listing `aliases`.
        public init(_ aliases: [(alias: String, collection: String)]) {
            self.aliases = aliases.map { Alias(aliasName: $0.alias, collectionName: $0.collection) }
        }
    }
}
