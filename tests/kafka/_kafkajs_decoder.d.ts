/** kafkajs's protocol decoder class (untyped module). */
declare const Decoder: new (buffer: Uint8Array) => unknown;
export default Decoder;
