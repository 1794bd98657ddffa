public import Tessera

extension Qdrant {
    /// The body of `PUT /collections/{name}/index` (Qdrant's `CreateFieldIndex`): the payload key and its
    /// `field_schema`, a type name or an object `{"type": …}` (see ``Tessera/PayloadIndexType/init(fieldSchema:field:)``
    /// for the types and parameters served).
    public struct CreateFieldIndex: Decodable, Sendable {
        public var fieldName: String
        public var fieldSchema: PayloadIndexType

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: JSONKey.self)
            let nameKey = JSONKey(stringValue: "field_name")
            let schemaKey = JSONKey(stringValue: "field_schema")
            fieldName = try container.decode(String.self, forKey: nameKey)
            guard container.contains(schemaKey), try !container.decodeNil(forKey: schemaKey) else {
                throw invalid(
                    decoder.codingPath + [schemaKey],
                    "payload index on '\(fieldName)': field_schema is required (Tessera does not infer it)"
                )
            }
            let schema = try container.decode(JSONValue.self, forKey: schemaKey)
            do {
                fieldSchema = try PayloadIndexType(fieldSchema: schema, field: fieldName)
            } catch {
                throw invalid(decoder.codingPath + [schemaKey], error.message)
            }
        }
    }
}
