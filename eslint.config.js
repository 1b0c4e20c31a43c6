// neostandard: the `standard` style the code already follows, with TypeScript support.
import neostandard from 'neostandard'
import globals from 'globals'

export default [
  ...neostandard({ ts: true, ignores: ['coverage/**', '.tap/**', 'client/schema.d.ts'] }),
  {
    // The dashboard runs in the browser, without a build step.
    files: ['web/**/*.js'],
    languageOptions: { globals: globals.browser }
  },
  {
    rules: {
      // `void promise` marks a promise that is deliberately not awaited (fire and forget, with its
      // own catch); as a statement it is that and nothing else.
      'no-void': ['error', { allowAsStatement: true }],
      // Tests register their teardown before they open what it closes (`let app` then
      // `t.teardown(() => app?.close())`, then `app = await build()`): that is not a constant.
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }]
    }
  }
]
