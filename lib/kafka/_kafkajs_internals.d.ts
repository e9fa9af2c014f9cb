/** An untyped kafkajs internal module; its users cast it to the shape they rely on. */
declare const internal: unknown;
export default internal;
