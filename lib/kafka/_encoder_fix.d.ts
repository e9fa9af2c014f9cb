/** The untyped kafkajs protocol encoder class (its prototype and statics are patched). */
declare const Encoder: {
  prototype: object;
  new (initialSize?: number): {
    buf: Uint8Array;
    offset: number;
    readonly buffer: Uint8Array;
  };
};
export default Encoder;
