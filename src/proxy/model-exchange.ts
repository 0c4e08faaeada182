// Moved to stages/model-exchange.ts (issue 87: no file of src/proxy/ outside the stages imports a
// feature's room). Kept only for websocket/model-socket.ts, whose move is another change's: it goes
// once nothing imports it.
export { CountedUsage } from './stages/model-exchange.ts';
