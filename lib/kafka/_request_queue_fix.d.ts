/** The untyped kafkajs request queue class (only its prototype is used). */
declare const RequestQueue: { prototype: object };
export default RequestQueue;
