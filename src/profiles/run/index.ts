// Profiles: what a coding agent needs to run behind keyway (docs/agents/README.md).
export { BUILTIN_PROFILES } from './builtin/index.ts';
export { grantsCovering, hostPort, type ModelGrantCover, modelGrantCover, noModelGrantWarning, type RoutedGrant } from './model-grant.ts';
export { checkProfileName, findProfile, type LoadedProfile, listProfiles, parseProfile, profilesDir } from './load.ts';
export { type KeyGrant, keyCovered, keyPlaceholders, makeProfileState, type PlanContext, type ProfileRunPlan, profileRunPlan } from './run-plan.ts';
export { type Profile, type ProfileHost, type ProfileState, PROFILE_NAME, profileSchema } from './schema.ts';
export { resolveState, type StatePath } from './state.ts';
export { KEPT_STATE_FOLDER, type KeptState, keptStatePlan, loginRefusal, makeKeptState, seedLogin } from './contained-state.ts';
