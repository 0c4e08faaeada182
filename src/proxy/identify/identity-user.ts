// Its own module so that the CLI (`--identity-token`) names it without loading the identify stage.

/** The proxy user name that says "the password is an identity token" (HTTPS_PROXY=http://jwt:TOKEN@…). */
export const IDENTITY_USER = 'jwt';
